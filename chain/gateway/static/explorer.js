// The inferchain explorer: polls /explorer/api/snapshot about once a second and redraws in place.
// Everything the node sends is put in the page as text (textContent), never as HTML.
"use strict";

(function () {
  const API = "/explorer/api/snapshot";
  const POLL_MS = 1000;
  const SVG = "http://www.w3.org/2000/svg";
  const seenJobs = new Set();
  const seenBlocks = new Set();
  let firstRender = true;
  let lastSnapshot = null;

  const $ = (id) => document.getElementById(id);

  function el(tag, props, children) {
    const node = document.createElement(tag);
    if (props) {
      for (const [key, value] of Object.entries(props)) {
        if (value === undefined || value === null) continue;
        if (key === "text") node.textContent = value;
        else if (key === "class") node.className = value;
        else node.setAttribute(key, value);
      }
    }
    for (const child of children || []) if (child) node.appendChild(child);
    return node;
  }

  const td = (text, cls, title) => el("td", { text: text, class: cls, title: title });
  const short = (hex, n) => (hex ? hex.slice(0, n || 8) + "…" + hex.slice(-4) : "–");
  const shortAddr = (a) => (a ? a.slice(0, 6) + "…" + a.slice(-4) : "–");
  const num = (n) => (n === null || n === undefined ? "–" : Number(n).toLocaleString("en-US"));

  const BADGES = {
    settled: "good", valid: "good", decided: "good",
    disputed: "warn", revealing: "info", committing: "info", assigned: "info", drawing: "info", queued: "idle",
    pending: "info", committed: "info", revealed: "good",
    expired: "bad", cancelled: "idle", rejected: "bad", refunded: "idle", invalid: "bad", missed: "bad", none: "idle",
  };
  const badge = (text) => el("span", { class: "badge " + (BADGES[text] || ""), text: text });

  function setText(id, text) {
    const node = $(id);
    if (node.textContent !== String(text)) node.textContent = text;
  }

  function bump(id, value) {
    const node = $(id);
    if (node.textContent === String(value)) return;
    node.textContent = value;
    node.classList.remove("bump");
    void node.offsetWidth; // restart the animation
    node.classList.add("bump");
  }

  function counted(n, noun) {
    return num(n) + " " + noun + (n === 1 ? "" : "s");
  }

  function ago(ms) {
    const s = Math.max(0, (Date.now() - ms) / 1000);
    if (s < 60) return s.toFixed(0) + " s";
    if (s < 3600) return (s / 60).toFixed(0) + " min";
    if (s < 86400) return (s / 3600).toFixed(1) + " h";
    return (s / 86400).toFixed(0) + " d"; // block 1 carries the genesis time (a dev chain's is fixed)
  }

  function fillTable(id, rows, emptyId) {
    const body = $(id).tBodies[0];
    body.replaceChildren(...rows);
    if (emptyId) {
      $(emptyId).hidden = rows.length > 0;
      $(id).hidden = rows.length === 0;
    }
  }

  // --- sections ------------------------------------------------------------------------

  function renderHead(head, executors) {
    setText("chain-id", head.chain_id);
    bump("best-height", "#" + num(head.best_height));
    setText("best-hash", short(head.best_hash, 12));
    bump("finalized-height", "#" + num(head.finalized_height));
    const lag = head.best_height - head.finalized_height;
    setText("finality-lag", lag <= 0 ? "final at the head" : lag + " behind the head");
    setText("block-time", (head.block_time_ms / 1000).toFixed(head.block_time_ms % 1000 ? 2 : 0) + " s");
    setText("round", "round " + head.consensus_round + (head.syncing ? " · syncing" : ""));
    setText("validators", num(head.validators));
    setText("peers", head.peers + " peer" + (head.peers === 1 ? "" : "s"));
    setText("executor-count", num(head.executors));
    const free = executors.reduce((sum, e) => sum + Math.max(0, e.capacity - e.load), 0);
    const capacity = executors.reduce((sum, e) => sum + e.capacity, 0);
    setText("free-slots", free + " of " + capacity + " slots free");
    setText("pending", num(head.pending_transactions));
    setText("version", "v" + head.node_version + " · spec " + head.spec_version);
    document.title = "#" + head.best_height + " · " + head.chain_id + " · inferchain explorer";
  }

  function renderJobs(jobs) {
    const rows = jobs.map((job) => {
      const executors = el("div", { class: "tags line" }, job.executors.map((slot) =>
        el("span", { class: "tag addr", title: slot.address + " · " + slot.status + " · class " + slot.engine_class + (slot.verdict ? " · " + slot.verdict : ""),
                     text: shortAddr(slot.address) + (slot.status === "missed" ? " ✕" : "") })));
      const verdict = el("td", null, [badge(job.verdict)]);
      const row = el("tr", { "data-job": job.id, class: firstRender || seenJobs.has(job.id + job.status) ? "" : "new" }, [
        el("td", null, [el("span", { class: "hash", title: job.id, text: short(job.id) })]),
        el("td", null, [badge(job.status)]),
        verdict,
        td(job.model),
        el("td", null, [executors.childNodes.length ? executors : el("span", { class: "muted", text: "–" })]),
        td(job.tokens === null ? "–" : num(job.tokens) + " / " + num(job.max_tokens), "num"),
        td(job.paid === "0" ? "–" : job.paid_text, "num", "protocol fee " + job.protocol_fee_text),
        td("#" + num(job.posted_height), "num"),
        td(job.blocks_to_settle === null ? "–" : job.blocks_to_settle + " blk", "num"),
        td(job.answer !== null ? job.answer : job.reason || "", "answer" + (job.answer ? " has" : "")),
      ]);
      seenJobs.add(job.id + job.status);
      return row;
    });
    fillTable("jobs", rows, "jobs-empty");
    const settled = jobs.filter((j) => j.verdict === "settled").length;
    setText("jobs-count", jobs.length ? jobs.length + " recent · " + settled + " settled" : "");
  }

  function renderBlocks(blocks) {
    const rows = blocks.slice(0, 20).map((block) => {
      const row = el("tr", { class: firstRender || seenBlocks.has(block.height) ? "" : "new" }, [
        td("#" + num(block.height), "num"),
        el("td", null, [el("span", { class: "hash", title: block.hash, text: short(block.hash) })]),
        td(shortAddr(block.proposer), "addr", block.proposer),
        td(num(block.transactions), "num"),
        td(block.jobs_posted ? num(block.jobs_posted) : "·", "num" + (block.jobs_posted ? "" : " muted")),
        td(block.tokens_revealed ? num(block.tokens_revealed) : "·", "num" + (block.tokens_revealed ? "" : " muted")),
        td(ago(block.time_ms), "num muted"),
      ]);
      seenBlocks.add(block.height);
      return row;
    });
    fillTable("blocks", rows);
    setText("blocks-count", blocks.length ? "last " + Math.min(20, blocks.length) + " finalized" : "");
  }

  // 200000000000000000 base units with 9 decimals: "200M INFER".
  function compactTokens(raw, decimals, symbol) {
    const whole = Number(BigInt(raw) / (10n ** BigInt(decimals)));
    const units = [[1e12, "T"], [1e9, "B"], [1e6, "M"], [1e3, "K"]];
    for (const [size, suffix] of units) {
      if (whole >= size) return (whole / size).toFixed(whole >= 10 * size ? 0 : 1).replace(/\.0$/, "") + suffix + " " + symbol;
    }
    return whole.toLocaleString("en-US") + " " + symbol;
  }

  function renderExecutors(executors, head) {
    const rows = executors.map((e) => {
      const share = e.capacity ? Math.min(1, e.load / e.capacity) : 0;
      const meter = el("span", { class: "meter" }, [el("i", { style: "width:" + (share * 100).toFixed(0) + "%" })]);
      const account = el("td", { title: e.address }, [
        el("div", { class: "addr", text: shortAddr(e.address) }),
        el("div", { class: "small muted", text: "region " + (e.region || "any") + " · class " + e.engine_class }),
      ]);
      return el("tr", null, [
        account,
        el("td", { class: "wrap" }, [el("div", { class: "tags" }, e.models.map((m) => el("span", { class: "tag", text: m, title: m })))]),
        td(compactTokens(e.bonded, head.token_decimals, head.token_symbol), "num", e.bonded_text),
        td(num(e.reputation), "num"),
        td(e.price_text, "num"),
        el("td", null, [meter, document.createTextNode(e.load + "/" + e.capacity)]),
      ]);
    });
    fillTable("executors", rows, "executors-empty");
    setText("executors-count", executors.length ? executors.length + " with an offer" : "");
  }

  function renderModels(models) {
    const rows = models.map((m) => el("tr", null, [
      el("td", { title: m.id }, [el("div", { text: m.name }), el("div", { class: "hash small", text: short(m.id, 12) })]),
      td(num(m.context_length), "num"),
      el("td", { class: "muted clip", title: m.engine }, [
        el("div", { class: "clip", text: m.engine }),
        el("div", { class: "small", text: m.engine_classes.length > 1 ? "classes " + m.engine_classes.join(", ") : "class cpu only" }),
      ]),
      td(m.size_bytes ? (m.size_bytes / 1048576).toFixed(1) + " MiB" : "–", "num"),
      td(m.executors ? m.executors + " (" + m.free_slots + " free)" : "none", "num" + (m.executors ? "" : " muted")),
    ]));
    fillTable("models", rows);
    setText("models-count", models.length ? models.length + " registered" : "");
  }

  function renderDisputes(disputes, slashes) {
    fillTable("disputes", disputes.map((d) => el("tr", null, [
      el("td", null, [el("span", { class: "hash", title: d.job, text: short(d.job) })]),
      td(d.reason),
      el("td", null, [badge(d.status)]),
      td(d.revealed + "/" + d.committee, "num"),
      el("td", { title: d.outcome }, [el("div", { class: "tags" }, d.verdicts.map(badge))]),
      td("#" + num(d.opened_height), "num"),
    ])), "disputes-empty");
    fillTable("slashes", slashes.map((s) => el("tr", null, [
      td(shortAddr(s.account), "addr", s.account),
      el("td", null, [badge(s.offence.replace(/_/g, " ")), s.braked ? el("span", { class: "muted", text: " braked" }) : null]),
      td(s.amount_text, "num"),
      td("#" + num(s.height), "num"),
      td(s.jailed_until ? "#" + num(s.jailed_until) : "–", s.jailed_until ? "" : "muted"),
    ])), "slashes-empty");
    const open = disputes.filter((d) => d.status !== "decided").length;
    setText("disputes-count", disputes.length + " disputes (" + open + " open) · " + slashes.length + " slashes");
  }

  // --- the chart: tokens/s as a line over jobs per block as bars ---------------------------

  function svg(tag, attrs) {
    const node = document.createElementNS(SVG, tag);
    for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, value);
    return node;
  }

  function niceMax(value) {
    if (value <= 0) return 1;
    const power = Math.pow(10, Math.floor(Math.log10(value)));
    for (const step of [1, 2, 2.5, 5, 10]) if (value <= step * power) return step * power;
    return 10 * power;
  }

  function renderChart(blocks, blockSeconds) {
    const chart = $("chart");
    const series = blocks.slice().sort((a, b) => a.height - b.height);
    const points = series.map((block, i) => {
      const seconds = interval(series[i - 1], block, blockSeconds);
      return { height: block.height, jobs: block.jobs_posted, tps: seconds > 0 ? block.tokens_revealed / seconds : 0, seconds: seconds };
    });
    const W = 900, H = 200, left = 40, right = 34, top = 10, bottom = 22;
    const plotW = W - left - right, plotH = H - top - bottom;
    const maxTps = niceMax(Math.max(0, ...points.map((p) => p.tps)));
    // Whole jobs on the right axis: its four steps are whole numbers.
    const maxJobs = Math.max(4, Math.ceil(Math.max(0, ...points.map((p) => p.jobs)) / 4) * 4);
    const nodes = [];
    for (let i = 0; i <= 4; i++) {
      const y = top + plotH - (plotH * i) / 4;
      nodes.push(svg("line", { x1: left, x2: W - right, y1: y, y2: y, class: "grid-line" }));
      const tps = svg("text", { x: left - 6, y: y + 4, "text-anchor": "end", class: "axis-label" });
      tps.textContent = formatAxis((maxTps * i) / 4);
      const jobs = svg("text", { x: W - right + 6, y: y + 4, "text-anchor": "start", class: "axis-label" });
      jobs.textContent = formatAxis((maxJobs * i) / 4);
      nodes.push(tps, jobs);
    }
    const n = Math.max(points.length, 2);
    const step = plotW / Math.max(n - 1, 1);
    const x = (i) => left + i * step;
    const barWidth = Math.max(2, Math.min(14, step * 0.6));
    points.forEach((p, i) => {
      if (!p.jobs) return;
      const h = (plotH * p.jobs) / maxJobs;
      nodes.push(svg("rect", { x: x(i) - barWidth / 2, y: top + plotH - h, width: barWidth, height: h, rx: 2, class: "jobs-bar" }));
    });
    if (points.length > 1) {
      const coords = points.map((p, i) => [x(i), top + plotH - (plotH * p.tps) / maxTps]);
      const line = coords.map(([cx, cy], i) => (i ? "L" : "M") + cx.toFixed(1) + " " + cy.toFixed(1)).join(" ");
      const area = line + " L" + coords[coords.length - 1][0].toFixed(1) + " " + (top + plotH) + " L" + coords[0][0].toFixed(1) + " " + (top + plotH) + " Z";
      const [lastX, lastY] = coords[coords.length - 1];
      nodes.push(svg("path", { d: area, class: "tokens-area" }), svg("path", { d: line, class: "tokens-line" }),
                 svg("circle", { cx: lastX, cy: lastY, r: 3.5, class: "tokens-dot" }));
    }
    chart.replaceChildren(...nodes);
    if (points.length) {
      setText("chart-from", "#" + num(points[0].height));
      setText("chart-to", "#" + num(points[points.length - 1].height));
      const tokens = series.reduce((s, b) => s + b.tokens_revealed, 0);
      const jobs = series.reduce((s, b) => s + b.jobs_posted, 0);
      const span = points.reduce((s, p) => s + p.seconds, 0);
      const rate = span > 0 ? tokens / span : 0;
      setText("chart-summary", counted(jobs, "job") + " · " + counted(tokens, "token") + " over " + counted(points.length, "block") + " · " + rate.toFixed(1) + " tokens/s");
    }
  }

  // Seconds from the previous block to this one; a gap longer than ten block times (the genesis block's
  // time, a halt) counts as one block time, so one old block does not flatten the whole series.
  function interval(previous, block, blockSeconds) {
    if (!previous || previous.height !== block.height - 1) return 0;
    const seconds = (block.time_ms - previous.time_ms) / 1000;
    return seconds > 0 && seconds <= 10 * blockSeconds ? seconds : blockSeconds;
  }

  function formatAxis(value) {
    if (value >= 1000) return (value / 1000).toFixed(value >= 10000 ? 0 : 1) + "k";
    return value % 1 ? value.toFixed(1) : String(value);
  }

  // --- polling -----------------------------------------------------------------------------

  function render(snapshot) {
    renderHead(snapshot.head, snapshot.executors);
    renderChart(snapshot.blocks, snapshot.head.block_time_ms / 1000 || 1);
    renderJobs(snapshot.jobs);
    renderBlocks(snapshot.blocks);
    renderExecutors(snapshot.executors, snapshot.head);
    renderModels(snapshot.models);
    renderDisputes(snapshot.disputes, snapshot.slashes);
    firstRender = false;
  }

  function showLive(ok, text) {
    const live = $("live");
    live.className = "live " + (ok ? "ok" : "down");
    setText("live-text", text);
  }

  function showError(message) {
    const banner = $("banner");
    banner.textContent = message + (lastSnapshot ? " Showing what it said last." : "");
    banner.hidden = false;
    showLive(false, "node unreachable");
  }

  async function poll() {
    try {
      const reply = await fetch(API, { cache: "no-store" });
      const body = await reply.json();
      if (!reply.ok) {
        showError((body.error && body.error.message) || "the explorer answered " + reply.status);
      } else {
        $("banner").hidden = true;
        if (!lastSnapshot || body.read_at !== lastSnapshot.read_at) render(body);
        lastSnapshot = body;
        showLive(true, "live · block " + body.head.best_height);
        setText("updated", "updated " + new Date(body.read_at * 1000).toLocaleTimeString());
      }
    } catch (error) {
      showError("The explorer does not answer (" + error.message + ").");
    }
    setTimeout(poll, POLL_MS);
  }

  // For tests and the curious: draw any snapshot (the page's own data comes from the poll).
  window.inferchainExplorer = { render: render };

  setInterval(() => { if (lastSnapshot) renderBlocks(lastSnapshot.blocks); }, 5000);
  poll();
})();
