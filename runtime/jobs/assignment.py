"""Assignment: who executes a job, drawn from an executor table frozen for the epoch, with a seed nobody knew in time.

A job included at height h is drawn in on_initialize of the block at h + assignment_delay_blocks,
from the state before that block's transactions and a seed hashed from the RANDAO mix after that
block's reveal (runtime/randomness.py). Before, the seed H(job id || height || count) was known
before submission: a poster burning nonces landed 20 of 20 jobs on the executor it wanted, and an
executor grinding its bond amount took 100 of 100 victim jobs (docs/economics.md, "Assignment
randomness").

Candidates come from per-model tables built at the model's first draw of each staking epoch, one per
engine class the executors offer (a job's executors all come from one class, picked by the tables'
weights within the job's price among the classes it accepts): every executor of the class serving the
model with at least the minimum bond, sorted by (price, account), with
weight stake x reputation x 2^128 / price^2 and running sums, one entry per state key. A draw reads
O(log n) entries: the cheapest max(missing, draw_candidates) entries within the job's price (ties
at the last price included), a point in their summed weight, a binary search. Picks that are full,
already on the job, no longer offering, or whose stake or reputation fell since the table was built
are refused by rejection (an exact weighted draw), and so are jailed executors and those whose stake is not
collateral for the job (collateral.py); more expensive entries are added when the cheap ones cannot fill
the job (docs/protocol.md, "Assignment").
"""

from __future__ import annotations

import struct
from bisect import bisect_right
from dataclasses import dataclass, field

from proto import state_pb2
from runtime import randomness, reputation, staking
from runtime.models import CPU_CLASS
import runtime.jobs.events as events
from runtime.jobs.collateral import collateral_stake, drawable_stake, lock_for
from runtime.jobs.tables import (
    Entry,
    Table,
    count_at_most,
    ensure_tables,
    entry_weight,
    read_entry,
    read_header,
    read_table,
)
from runtime.jobs.errors import NoExecutors
from runtime.jobs.params import Params, read_params
from runtime.jobs.phases import ASSIGNED, DRAWING, EXPIRED, QUEUED, SLOT_ASSIGNED, SLOT_MISSED
from runtime.jobs.queue import dequeue, enqueue, queued_models, schedule, schedule_key
from runtime.jobs.recipes import accept_point, assignment_seed, class_point, draw_point
from runtime.jobs.settlement import end, make_room
from runtime.id_list import read_ids, write_ids
from runtime.jobs.storage import add_load, index_assigned, missing_slots, read_job, read_load, write_job
from runtime.state import Overlay, StateReader

DRAW_DUE_PREFIX = b"jobs/draw_due/"  # + u64be height -> JobIdList: jobs whose first draw is in that block
# Picks refused per candidate range before more expensive executors are added (then the job is queued).
MAX_REJECTIONS = 32
# Picks refused in one hook (on_initialize's first draws, or on_finalize's retries and reassignments), all
# jobs together: a job whose draw would refuse more waits in the queue for a later block. A refused pick costs
# what a pick does, so this bounds what full or departed executors can add to a block's work
# (runtime/jobs/weights.py declares it once per hook).
MAX_REFUSALS_PER_HOOK = 64


class RefusalBudget:
    """The picks a hook may still refuse (MAX_REFUSALS_PER_HOOK at its start)."""

    def __init__(self, left: int = MAX_REFUSALS_PER_HOOK):
        self.left = left


# --- the draw ------------------------------------------------------------------


@dataclass
class _Removed:
    """Weight taken out of a table's entries during one round (picked, refused, or fallen since the build)."""

    indexes: list[int] = field(default_factory=list)
    amounts: dict[int, int] = field(default_factory=dict)
    sums: list[int] = field(default_factory=list)

    def set(self, index: int, amount: int) -> None:
        if index not in self.amounts:
            self.indexes.insert(bisect_right(self.indexes, index), index)
        self.amounts[index] = amount
        running, self.sums = 0, []
        for position in self.indexes:
            running += self.amounts[position]
            self.sums.append(running)

    def up_to(self, index: int) -> int:
        """Weight removed from entries 0..index."""
        position = bisect_right(self.indexes, index)
        return self.sums[position - 1] if position else 0


def locate(state: StateReader, table: Table, limit: int, point: int, removed: _Removed | None = None) -> Entry:
    """The first entry below `limit` whose remaining running sum exceeds `point`: sum(w'_j, j <= i) > point."""
    removed = removed or _Removed()
    low, high = 0, limit - 1
    while low < high:
        middle = (low + high) // 2
        if read_entry(state, table, middle).cumulative - removed.up_to(middle) > point:
            high = middle
        else:
            low = middle + 1
    return read_entry(state, table, low)


def weight_now(state: StateReader, entry: Entry, model: bytes, min_bond: int, collateral: int) -> int:
    """The entry's weight now at its frozen price: the lower of its stake and of its reputation now and at the build;
    0 when it cannot take the job (no offer for the model in the entry's engine class, below the minimum bond, jailed,
    full, or its stake is not collateral for this job on top of the jobs it holds: `collateral` x (its load + 1))."""
    offer = staking.read_offer(state, entry.account)
    if offer is None or model not in offer.models or (offer.engine_class or CPU_CLASS) != entry.engine_class:
        return 0
    stake = drawable_stake(state, entry.account)
    if stake < min_bond:
        return 0
    load = read_load(state, entry.account)
    if load >= min(entry.capacity, offer.capacity) or stake < collateral * (load + 1):
        return 0
    score = reputation.read_reputation(state, entry.account)
    return entry_weight(min(stake, entry.stake), min(score, entry.reputation), entry.price)


def _candidate_limit(state: StateReader, table: Table, within: int, wanted: int) -> int:
    """The cheapest `wanted` of the `within` entries in price, with every entry tied at the last price."""
    if within <= wanted:
        return within
    return count_at_most(state, table, within, read_entry(state, table, wanted - 1).price)


def draw_from(state: StateReader, job: state_pb2.Job, table: Table, count: int, seed: bytes,
              params: Params, budget: RefusalBudget) -> list[Entry] | None:
    """`missing` distinct executors from one table, each pick weighted; None when it cannot fill the job.

    A pick is the first entry whose running sum of remaining weight exceeds draw_point(seed, t, total).
    It stands when accept_point(seed, t, w') < its weight now (w' = its remaining weight in the draw;
    an increase since the build counts from the next epoch); else its remaining weight becomes its
    weight now (0 when it is full, on the job, unbonded or no longer offering) and the draw goes on.
    """
    model = job.request.model
    missing = missing_slots(job)
    within = count_at_most(state, table, count, job.request.max_price_per_token)
    if within < missing:
        return None
    min_bond, collateral = staking.read_params(state).min_bond, collateral_stake(state, job)
    taken = {slot.executor for slot in job.assignments}
    wanted = max(missing, params.draw_candidates)
    limit = _candidate_limit(state, table, within, wanted)
    removed, chosen, attempt, refused = _Removed(), [], 0, 0
    while len(chosen) < missing:
        total = read_entry(state, table, limit - 1).cumulative - removed.up_to(limit - 1)
        if total <= 0 or refused > missing + MAX_REJECTIONS:
            if limit == within:
                return None
            wanted, refused = 2 * wanted, 0
            limit = _candidate_limit(state, table, within, wanted)
            continue
        entry = locate(state, table, limit, draw_point(seed, attempt, total), removed)
        remaining = entry.weight - removed.amounts.get(entry.index, 0)
        now = 0 if entry.account in taken else weight_now(state, entry, model, min_bond, collateral)
        if now >= remaining or (now > 0 and accept_point(seed, attempt, remaining) < now):
            chosen.append(entry)
            taken.add(entry.account)
            removed.set(entry.index, entry.weight)
        else:
            removed.set(entry.index, entry.weight - now)
            refused += 1
            budget.left -= 1
            if budget.left < 0:
                return None
        attempt += 1
    return chosen


def job_classes(job: state_pb2.Job, built: list[str]) -> list[str]:
    """The engine classes the job may be drawn from, sorted: those it accepts that have tables (every class with
    a table when it names none); once it holds an assignment that was not missed, only that assignment's class,
    so that every result of one job comes from engines whose arithmetic agrees."""
    names = set(job.request.engine_classes) or set(built)
    held = next((slot.engine_class or CPU_CLASS for slot in job.assignments if slot.status != SLOT_MISSED), None)
    if held is not None:
        names &= {held}
    return sorted(name for name in names if name in built)


@dataclass(frozen=True)
class _ClassTable:
    """A class's table in one draw's region step: how many entries are within the job's price, and their weight."""

    table: Table
    count: int
    weight: int


def _class_tables(state: StateReader, job: state_pb2.Job, classes: list[str], region: str,
                  params: Params) -> list[_ClassTable]:
    """The accepted classes' tables of `region` that have enough executors within the job's price: `missing` for
    the all-regions tables, max(missing, region_min_candidates) for a region's; each weighed by the summed weight
    of its entries within the price (one binary search and one entry read per class)."""
    missing = missing_slots(job)
    needed = max(missing, params.region_min_candidates) if region else missing
    found = []
    for engine_class in classes:
        table = Table(job.request.model, engine_class, region)
        header = read_table(state, table)
        if header is None:
            continue
        within = count_at_most(state, table, header.count, job.request.max_price_per_token)
        if within >= max(needed, 1):
            found.append(_ClassTable(table, header.count, read_entry(state, table, within - 1).cumulative))
    return found


def _pick_class(tables: list[_ClassTable], seed: bytes, index: int) -> _ClassTable:
    """One of the class tables, in proportion to its weight within the price: the first (in class name order) whose
    running sum of weights exceeds class_point(seed, index, total). One table, or none with weight: the first."""
    total = sum(table.weight for table in tables)
    if len(tables) == 1 or total == 0:
        return tables[0]
    point, running = class_point(seed, index, total), 0
    for table in tables:
        running += table.weight
        if running > point:
            return table
    raise AssertionError("a point below the total lies in some table")


def draw(state: StateReader, job: state_pb2.Job, params: Params, seed: bytes,
         budget: RefusalBudget | None = None) -> list[Entry] | None:
    """The job's missing executors, all of one engine class: from its region's tables (when one qualifies) and else
    from the all-regions tables, the class picked by weight among those that qualify and, when its table cannot
    fill the job, the next picked among the rest; None when too few are free, or when the hook's `budget` of
    refused picks runs out (a fresh one when None: a reader predicting one draw, as the hook would make it first)."""
    budget = budget if budget is not None else RefusalBudget()
    header = read_header(state, job.request.model)
    if header is None:
        return None
    classes = job_classes(job, list(header.engine_classes))
    regions = [job.request.region, ""] if job.request.region else [""]
    index = 0
    for region in regions:
        tables = _class_tables(state, job, classes, region, params)
        while tables:
            picked = _pick_class(tables, seed, index)
            index += 1
            chosen = draw_from(state, job, picked.table, picked.count, seed, params, budget)
            if chosen is not None:
                return chosen
            tables.remove(picked)
    return None


# --- posting and filling -------------------------------------------------------


def check_executors(state: StateReader, job: state_pb2.Job, params: Params) -> None:
    """Refuse a job that no set of executors of one accepted engine class could take: too few serve the model in
    such a class within its price.

    The model's newest tables answer in O(log n) entries per class when one holds enough executors within
    the price; otherwise (no table yet, or tables that say no while offers may have changed since) the
    offers are read, and the job is refused only if they say no too.
    """
    request = job.request
    header = read_header(state, request.model)
    if header is not None:
        for engine_class in job_classes(job, list(header.engine_classes)):
            table = Table(request.model, engine_class)
            count = read_table(state, table).count
            if count_at_most(state, table, count, request.max_price_per_token) >= request.redundancy:
                return
    by_class = _offered_prices(state, request.model, set(request.engine_classes))
    if request.engine_classes and not by_class:
        raise NoExecutors(f"no executor offers model {request.model.hex()} in engine class(es) "
                          f"{', '.join(request.engine_classes)}")
    # The executors of one job come from one class: the class with the most offers (ties: the first name) speaks.
    prices = max(by_class.values(), key=len, default=[])
    named = "" if set(by_class) <= {CPU_CLASS} else f" in one engine class ({_class_counts(by_class)})"
    if len(prices) < request.redundancy:
        raise NoExecutors(
            f"redundancy {request.redundancy} is above the {len(prices)} executors serving model "
            f"{request.model.hex()}{named}"
        )
    within = max(sum(1 for price in class_prices if price <= request.max_price_per_token)
                 for class_prices in by_class.values())
    if within < request.redundancy:
        lowest = sorted(price for class_prices in by_class.values() for price in class_prices)
        raise NoExecutors(
            f"only {within} executors serve the model at max_price_per_token {request.max_price_per_token} "
            f"or less{named} (the lowest prices are {', '.join(map(str, lowest[:request.redundancy]))}); "
            f"redundancy {request.redundancy} needs {request.redundancy}"
        )


def _class_counts(by_class: dict[str, list[int]]) -> str:
    return ", ".join(f"{name}: {len(prices)}" for name, prices in sorted(by_class.items()))


def _offered_prices(state: StateReader, model: bytes, accepted: set[str]) -> dict[str, list[int]]:
    """The prices offered for the model by bonded executors, per engine class (only `accepted` ones when named)."""
    stake_params = staking.read_params(state)
    by_class: dict[str, list[int]] = {}
    for account in staking.serving(state, model):
        offer = staking.read_offer(state, account)
        if offer is None or staking.bonded(state, account) < stake_params.min_bond:
            continue
        engine_class = offer.engine_class or CPU_CLASS
        if accepted and engine_class not in accepted:
            continue
        by_class.setdefault(engine_class, []).append(offer.price_per_token)
    return {name: sorted(prices) for name, prices in by_class.items()}


def schedule_draw(state: Overlay, job: state_pb2.Job, params: Params, height: int) -> None:
    """Have the job's first executors drawn in the block at height + assignment_delay_blocks."""
    job.draw_height = height + params.assignment_delay_blocks
    key = DRAW_DUE_PREFIX + struct.pack(">Q", job.draw_height)
    write_ids(state, key, read_ids(state, key) + [job.id])


def draws_pending(state: StateReader, head: int) -> bool:
    """Whether a job waits to be drawn in one of the next assignment_delay_blocks blocks after `head` (a node
    starts those heights early, as it does for waiting transactions, so the delay costs blocks, not idle time)."""
    delay = read_params(state).assignment_delay_blocks
    return any(state.get(DRAW_DUE_PREFIX + struct.pack(">Q", height)) for height in range(head + 1, head + delay + 1))


def refresh_tables(state: Overlay, height: int, params: Params) -> None:
    """on_initialize: bring to this epoch the tables of every model this block may draw for: the jobs drawn now,
    the models with queued jobs (retried in on_finalize) and the jobs due at this height (reassigned then).

    Built here, from the state before the block's transactions, so nothing in the block shapes a table.
    """
    models = set(queued_models(state))
    for key in (DRAW_DUE_PREFIX + struct.pack(">Q", height), schedule_key(height)):
        for job_id in read_ids(state, key):
            job = read_job(state, job_id)
            if job is not None:
                models.add(job.request.model)
    for model in sorted(models):
        ensure_tables(state, model, height, params)


def draw_due(state: Overlay, height: int) -> None:
    """on_initialize: refresh the tables, then draw the jobs whose first draw is at this height (cancelled ones
    are skipped)."""
    params = read_params(state)
    refresh_tables(state, height, params)
    key = DRAW_DUE_PREFIX + struct.pack(">Q", height)
    due = read_ids(state, key)
    if not due:
        return
    state.delete(key)
    budget = RefusalBudget()
    for job_id in due:
        job = read_job(state, job_id)
        if job is None or job.status != DRAWING or job.assignments:
            continue
        fill_or_queue(state, job, params, height, budget)
        write_job(state, job)


def try_fill(state: Overlay, job: state_pb2.Job, params: Params, height: int, budget: RefusalBudget) -> bool:
    """Assign executors to every empty slot at once; False (nothing written) when too few are free."""
    missing = missing_slots(job)
    if missing <= 0:
        return True
    if read_header(state, job.request.model) is None:
        # A job from before tables existed: its model's first table is built here.
        ensure_tables(state, job.request.model, height, params)
    seed = assignment_seed(job.id, randomness.read_mix(state), height, len(job.assignments))
    chosen = draw(state, job, params, seed, budget)
    if chosen is None:
        return False
    deadline = schedule(state, height + params.commit_window(job.request.max_tokens), job.id)
    for entry in chosen:
        job.assignments.append(
            state_pb2.Assignment(
                executor=entry.account,
                price_per_token=entry.price,
                status=SLOT_ASSIGNED,
                assigned_height=height,
                deadline_height=deadline,
                engine_class="" if entry.engine_class == CPU_CLASS else entry.engine_class,
            )
        )
        add_load(state, entry.account, 1)
        index_assigned(state, job, entry.account)
        lock_for(state, job, entry.account)
        state.deposit_event(
            events.event(events.JOB_ASSIGNED, job=job.id.hex(), executor=entry.account.hex(),
                         price_per_token=entry.price, deadline_height=deadline, engine_class=entry.engine_class)
        )
    job.status = ASSIGNED
    return True


def fill_or_queue(state: Overlay, job: state_pb2.Job, params: Params, height: int, budget: RefusalBudget) -> None:
    """Fill the job's empty slots now, or queue it (a queued job waits on silently), or expire it at its timeout
    or when its model's queue has no room for it (settlement.make_room)."""
    if try_fill(state, job, params, height, budget):
        dequeue(state, job)
        return
    full = make_room(state, job, params)
    if height >= job.timeout_height or full:
        end(state, job, EXPIRED, full or "no executor was free before the job's timeout")
        return
    job.status = QUEUED
    if enqueue(state, job):
        state.deposit_event(events.event(events.JOB_QUEUED, job=job.id.hex(), missing=missing_slots(job)))
