"""The prober: one sealed probe an epoch, posted like any job and opened once it settles (docs/protocol.md,
"Sealed probes").

A thread of its own (block_thread.py), woken by the worker's loop at each finalized block, as the
juror. Once an epoch, at a height drawn at random in the epoch's first half, it seals a probe of one of
two kinds:

- adopted (half the time, when a poster other than this account posted a job of at most
  `probe_max_tokens` tokens among the newest 100 settled ones): that poster's next job, whose id is
  job_id(genesis, poster, its next nonce): SealProbe alone. If it posts a job with that nonce, the probe
  is a real user's job, and nothing, not even its poster, tells it apart; if it does not, nothing happens.
- posted here: it copies the request of a job settled recently (a random one among the newest 100 not
  posted by this account or the probe fund, and not yet pruned), with `max_tokens` at most the chain's
  `probe_max_tokens` and a fresh seed, and sends two transactions from the worker's account, nonces n and
  n + 1, so the seal is in a block no later than the job:

    SealProbe{blake2b-256(b"inferchain/probe-seal/v1" || job id || salt)}   job id = job_id(genesis, me, n + 1)
    PostJob{the copied request}

At each block it reads each of its probe jobs; once one is SETTLED (no dispute, in its challenge window) it
sends OpenProbe{job id, salt}: the job is audited and the probe fund pays back what its results were paid. A
job that ends otherwise (expired, rejected, disputed already) is forgotten, its seal left to be pruned. Salts
live in memory only: a worker restarted before its probe settles loses it (its cost is the job's protocol fee
and price, nothing is slashed).

With nothing settled to copy it looks again a tenth of an epoch later (said once). Failures (a seal
refused because the epoch's seals are taken, a node unreachable) are said in one log line and the next
epoch tries again; a seal whose nonce the worker's own commit or reveal took first is
sent again at the next block (the worker and the prober sign with one key). The prober uses no engine.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass

from chain.client import Client, ClientError
from chain.crypto import Keypair
from chain.worker.block_thread import BlockThread
from chain.worker.submitter import new_salt
from proto import state_pb2, types_pb2
from runtime import staking
from runtime.disputes import params as dispute_params
from runtime.disputes.recipes import probe_seal
from runtime.jobs.phases import FINAL_STATUSES, SETTLED
from runtime.jobs.recipes import PROBE_FUND, job_id
from runtime.params import decode_params

log = logging.getLogger("inferchain.worker")

# The settled jobs a probe's request is copied from: the newest page of them.
TEMPLATES = 100
# Blocks a posted probe may stay unseen by the node before it is forgotten (dropped from the pool).
UNSEEN_BLOCKS = 20
# The share of probes that adopt another poster's next job when one fits (the rest are posted here, so that a
# market with few posters is probed too).
ADOPT_SHARE = 0.5


class NoTemplate(Exception):
    """No settled job of another poster to copy a probe from."""


class NonceTaken(Exception):
    """Another transaction of the account took the nonce the seal was signed with (the worker's commit or reveal)."""


@dataclass
class Probe:
    """A probe this worker sealed and posted: its job, salt and what became of it."""

    job_id: bytes
    salt: bytes
    posted_head: int  # the head height when it was sealed
    adopted: bool = False  # another poster's next job, not one posted here
    opening: bytes = b""  # the OpenProbe's transaction hash, once sent


@dataclass(frozen=True)
class ProbeRules:
    """The chain parameters the prober follows."""

    staking: staking.Params
    probe_max_tokens: int
    sealed_per_epoch: int


def probe_request(template: types_pb2.PostJob, max_tokens: int, seed: int) -> types_pb2.PostJob:
    """A probe's request: the template's, at most `max_tokens` tokens, with `seed` for its sampling."""
    request = types_pb2.PostJob()
    request.CopyFrom(template)
    request.max_tokens = min(template.max_tokens, max_tokens)
    if request.sampling.temperature_milli:
        request.sampling.seed = seed
    return request


def adoptable_posters(jobs: list[state_pb2.Job], account: bytes, max_tokens: int) -> list[bytes]:
    """The other posters (not the probe fund) of `jobs` whose job fitted a probe (at most `max_tokens` tokens),
    each once, in first-seen order: whose next job a probe may adopt."""
    posters = [job.poster for job in jobs if job.poster not in (account, PROBE_FUND) and not job.probe
               and job.request.max_tokens <= max_tokens]
    return list(dict.fromkeys(posters))


def pick_template(jobs: list[state_pb2.Job], account: bytes, rng: random.Random) -> state_pb2.Job | None:
    """A random job of `jobs` another account posted (not the probe fund, not a probe) whose record still holds its
    prompt (a record is pruned challenge_window_blocks after the job ends), or None."""
    others = [job for job in jobs
              if job.poster not in (account, PROBE_FUND) and not job.probe and not job.pruned_height]
    return rng.choice(others) if others else None


class Prober(BlockThread):
    """Seals, posts and opens this account's probes, until stopped; driven by `on_block`."""

    name = "prober"

    def __init__(self, target: str, keypair: Keypair, rng: random.Random | None = None):
        super().__init__()
        self.client = Client(target)
        self.keypair = keypair
        self.account = keypair.public_key
        self.rng = rng or random.SystemRandom()
        self.probes: dict[bytes, Probe] = {}
        self._rules: ProbeRules | None = None
        self._planned: tuple[int, int] | None = None  # (epoch, height to probe at)
        self._probed_epoch = -1  # the last epoch probed (or whose seal was refused)
        self._said: set[str] = set()

    def stop(self, timeout: float = 15.0) -> None:
        self.stop_thread(timeout)
        self.client.close()

    def take_step(self, height: int, receipts: list) -> bool:
        try:
            self.step(height)
        except ClientError as error:
            self._say(f"probes: the node refused or failed a request ({error.message}); trying at the next block")
        except Exception:  # a bug: never the thread's end
            log.exception("probes: unexpected failure at #%d", height)
        return True

    # -- one block -------------------------------------------------------------------------

    def step(self, height: int) -> None:
        """Probe when this epoch's planned height has come, and follow every probe posted."""
        rules = self.rules()
        epoch = staking.epoch_of(height, rules.staking)
        if self._planned is None or self._planned[0] != epoch:
            epoch_blocks = rules.staking.epoch_blocks
            self._planned = (epoch, epoch * epoch_blocks + 1 + self.rng.randrange(max(1, epoch_blocks // 2)))
        if rules.sealed_per_epoch and height >= self._planned[1] and self._probed_epoch != epoch:
            try:
                self.probe(height, rules)
                self._probed_epoch = epoch
            except NonceTaken:
                pass  # the worker's own commit or reveal took the nonce: try again at the next block
            except NoTemplate:
                # Nothing settled to copy yet: look again a tenth of an epoch later, within this epoch.
                self._planned = (epoch, height + max(1, rules.staking.epoch_blocks // 10))
        for probe in list(self.probes.values()):
            self.follow(probe, height)

    def rules(self) -> ProbeRules:
        """The chain's parameters (read once: they are set at genesis)."""
        if self._rules is None:
            staking_params = decode_params(staking.PARAMS, self._state(staking.PARAMS_KEY))
            disputes = decode_params(dispute_params.PARAMS, self._state(dispute_params.PARAMS_KEY))
            self._rules = ProbeRules(staking_params, disputes.probe_max_tokens, disputes.sealed_probes_per_epoch)
        return self._rules

    def _state(self, key: bytes) -> bytes | None:
        return self.client.state_proof(key).value

    def probe(self, height: int, rules: ProbeRules) -> Probe | None:
        """Seal one probe: half the time, when another poster's recent job fits a probe, that poster's next job
        (adopted); else a job copied from a recently settled one, posted by this account. None when the seal is
        refused, NoTemplate when there is no job to copy."""
        settled = list(self.client.list_jobs(status="settled", limit=TEMPLATES).jobs)
        posters = adoptable_posters(settled, self.account, rules.probe_max_tokens)
        if posters and self.rng.random() < ADOPT_SHARE:
            return self.adopt(self.rng.choice(posters), height)
        template = pick_template(settled, self.account, self.rng)
        if template is None:
            self._say(f"probes: no settled job of another poster to copy yet (#{height}); looking again later this "
                      "epoch", logging.INFO, kind="no template")
            raise NoTemplate()
        request = probe_request(template.request, rules.probe_max_tokens, self.rng.getrandbits(64))
        info = self.client.chain_info(self.account)
        nonce = info.signer_next_nonce
        probe_id = job_id(info.genesis_hash, self.account, nonce + 1)
        salt = self._seal(probe_id, nonce)
        if salt is None:
            return None
        self.client.submit(self.keypair, request, nonce=nonce + 1)
        probe = Probe(probe_id, salt, height)
        self.probes[probe_id] = probe
        log.info("probes: sealed and posted probe job %s (%d tokens of model %s...)", probe_id.hex()[:16],
                 request.max_tokens, request.model.hex()[:12])
        return probe

    def adopt(self, poster: bytes, height: int) -> Probe | None:
        """Seal the poster's next job (the nonce after its pending transactions): if it posts one, it is a probe that
        nothing tells from a real job, because it is one."""
        info = self.client.chain_info(self.account)
        probe_id = job_id(info.genesis_hash, poster, self.client.next_nonce(poster))
        salt = self._seal(probe_id)
        if salt is None:
            return None
        probe = Probe(probe_id, salt, height, adopted=True)
        self.probes[probe_id] = probe
        log.info("probes: sealed the next job of %s... as a probe (job %s, if it posts one)", poster.hex()[:12],
                 probe_id.hex()[:16])
        return probe

    def _seal(self, probe_id: bytes, nonce: int | None = None) -> bytes | None:
        """Send SealProbe for the job; its salt, or None when the node refuses the seal (NonceTaken instead when
        `nonce` is given and another transaction of this account took it first)."""
        salt = new_salt()
        try:
            self.client.submit(self.keypair, types_pb2.SealProbe(commitment=probe_seal(probe_id, salt)), nonce=nonce)
        except ClientError as error:
            if nonce is not None and "nonce" in error.message:
                raise NonceTaken(error.message) from error
            log.info("probes: no probe this epoch: the seal was refused (%s)", error.message)
            return None
        return salt

    def follow(self, probe: Probe, height: int) -> None:
        """Open the probe once its job settled; forget it once opened, or when its job ends another way."""
        if probe.opening:
            status = self.client.transaction(probe.opening)
            if status.status == "pending":
                return
            if status.status == "included" and status.receipt is not None and status.receipt.success:
                log.info("probes: opened probe job %s: it is audited", probe.job_id.hex()[:16])
            else:
                receipt = status.receipt
                reason = (f"{receipt.error_module}.{receipt.error_name}: {receipt.error_message}" if receipt is not None
                          else status.reason or status.status)
                log.warning("probes: opening probe job %s failed: %s", probe.job_id.hex()[:16], reason)
            del self.probes[probe.job_id]
            return
        try:
            job = self.client.get_job(probe.job_id).job
        except ClientError as error:
            if error.code != "NOT_FOUND":
                raise
            # An adopted job may come any time while its seal lasts (through the next epoch).
            patience = 2 * self.rules().staking.epoch_blocks if probe.adopted else UNSEEN_BLOCKS
            if height - probe.posted_head > patience:
                log.info("probes: probe job %s was never posted; forgotten", probe.job_id.hex()[:16])
                del self.probes[probe.job_id]
            return
        if job.request.max_tokens > self.rules().probe_max_tokens:
            log.info("probes: adopted job %s asks for more than probe_max_tokens; not a probe after all",
                     probe.job_id.hex()[:16])
            del self.probes[probe.job_id]
            return
        if job.status == SETTLED and not any(slot.released for slot in job.assignments):
            call = types_pb2.OpenProbe(job_id=probe.job_id, salt=probe.salt)
            probe.opening = self.client.submit(self.keypair, call).hash
        elif job.status in FINAL_STATUSES or job.status == state_pb2.JOB_STATUS_DISPUTED:
            log.info("probes: probe job %s ended %s before it could be opened; forgotten", probe.job_id.hex()[:16],
                     state_pb2.JobStatus.Name(job.status).removeprefix("JOB_STATUS_").lower())
            del self.probes[probe.job_id]

    def _say(self, line: str, level: int = logging.WARNING, kind: str = "") -> None:
        """Log a line once: the first of its `kind` (default: the line itself)."""
        kind = kind or line
        if kind not in self._said:
            self._said.add(kind)
            log.log(level, "%s", line)
