"""Engine classes on chain (issue 27): a model names classes besides "cpu" and cross-class thresholds, an offer
names the class its executor runs, a job the classes it accepts; the draw takes executors of one accepted class,
weighted as before, and records the class; bad names and unknown classes are refused with no state change."""

from __future__ import annotations

import re
from dataclasses import replace
from collections import Counter
from hashlib import blake2b

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from inference.errors import InvalidThresholds
from inference.registration import registered_thresholds
from proto import state_pb2, types_pb2
from runtime import models
from runtime.disputes import committee
from runtime.jobs import assignment
from runtime.jobs.errors import InvalidJob
from runtime.jobs.calls import check_post
from runtime.jobs.tables import Table, read_header
from runtime.executive import InvalidCall, check_transaction, transaction_rules
from runtime.module import GenesisInvalid
from runtime.staking.errors import InvalidOffer
from runtime.staking.offers import check_offer
from runtime.state import Overlay
from runtime import staking
from runtime.staking.genesis import GenesisStake
from tests.runtime.helpers import ACCOUNTS, genesis_state
from tests.runtime.market import BOND, EXECUTORS, JOBS, MODEL, MODEL_ID, NO_PROBES, STAKING, Market

NAME = re.compile(r"[a-z0-9-]{1,32}")


def thresholds(worst: int) -> types_pb2.ModelThresholds:
    """Usable thresholds told apart by their worst margin."""
    bounds = types_pb2.ModelThresholds()
    bounds.CopyFrom(MODEL.thresholds)
    bounds.worst_margin_micro = worst
    return bounds


GPU_A = types_pb2.EngineClass(name="gpu-a", engine="llama-cpp-python 0.3.36 cuda sm90", thresholds=thresholds(-2_000_000))
GPU_B = types_pb2.EngineClass(name="gpu-b", engine="llama-cpp-python 0.3.36 cuda sm80", thresholds=thresholds(-2_100_000))
# A result made on gpu-a judged by a cpu verifier: measured, and told apart by its worst margin.
A_ON_CPU = types_pb2.ClassPair(executor_class="gpu-a", verifier_class="cpu", thresholds=thresholds(-3_000_000),
                               detection_ppm=990_000)
B_ON_CPU = types_pb2.ClassPair(executor_class="gpu-b", verifier_class="cpu", thresholds=thresholds(-3_100_000))


def classed(model: types_pb2.ModelInfo = MODEL, classes=(GPU_A, GPU_B), pairs=(A_ON_CPU, B_ON_CPU)) -> types_pb2.ModelInfo:
    described = types_pb2.ModelInfo()
    described.CopyFrom(model)
    described.engine_classes.extend(classes)
    described.class_pairs.extend(pairs)
    return described


CLASSED = classed()


def stake(account, price: int = 1_000, engine_class: str = "", capacity: int = 8) -> GenesisStake:
    offer = state_pb2.Offer(models=[MODEL_ID], price_per_token=price, capacity=capacity, engine_class=engine_class)
    return GenesisStake(account.public_key, BOND, False, offer)


def classed_market(*classes: str) -> Market:
    """A market whose registered model is CLASSED, EXECUTORS[i] offering it in classes[i] ("" : cpu)."""
    state = genesis_state(endowed=6, registered=(CLASSED,),
                          stakes=tuple(stake(account, engine_class=name) for account, name in zip(EXECUTORS, classes)),
                          jobs_params=JOBS, staking_params=STAKING, models_params=models.Params(proposal_deposit=10**9),
                          disputes_params=NO_PROBES)
    return Market(state)


def a_job(engine_classes=(), redundancy: int = 1, assignments=()) -> state_pb2.Job:
    request = types_pb2.PostJob(model=MODEL_ID, prompt="hello", prompt_format="chat", max_tokens=8,
                                max_price_per_token=5_000, redundancy=redundancy, engine_classes=list(engine_classes))
    return state_pb2.Job(id=bytes(32), request=request, status=state_pb2.JOB_STATUS_QUEUED, assignments=assignments)


def drawn_classes(world: Market, job: state_pb2.Job, draws: int = 300) -> Counter:
    """How often each class is drawn for `job` over `draws` seeds (each draw's executors are of one class)."""
    layer = Overlay(world.state)
    assignment.ensure_tables(layer, MODEL_ID, world.height + 1, JOBS)
    counts = Counter()
    for index in range(draws):
        seed = blake2b(index.to_bytes(4, "big"), digest_size=32).digest()
        chosen = assignment.draw(layer, job, JOBS, seed)
        if chosen is None:
            counts[None] += 1
            continue
        (engine_class,) = {entry.engine_class for entry in chosen}
        counts[engine_class] += 1
    return counts


def unchanged(world: Market, receipt: types_pb2.Receipt, before: dict) -> None:
    """A refused call changed nothing but the fee and the nonce (the sender's account record)."""
    after = dict(world.state.iter_prefix())
    changed = {key for key in set(before) | set(after) if before.get(key) != after.get(key)}
    assert not receipt.success
    assert all(key.startswith((b"system/", b"balances/")) for key in changed), sorted(changed)


# -- the model's classes -----------------------------------------------------------------------------


def test_a_model_with_classes_and_pairs_is_valid_and_its_thresholds_are_looked_up_by_pair():
    models.check_model(CLASSED)
    assert models.class_names(CLASSED) == ["cpu", "gpu-a", "gpu-b"]
    assert models.class_engine(CLASSED, "gpu-b") == GPU_B.engine and models.class_engine(CLASSED, "tpu") is None
    assert models.class_thresholds(CLASSED, "cpu", "cpu") == MODEL.thresholds
    assert models.class_thresholds(CLASSED, "", "") == MODEL.thresholds
    assert models.class_thresholds(CLASSED, "gpu-a", "gpu-a") == GPU_A.thresholds
    assert models.class_thresholds(CLASSED, "gpu-a", "cpu") == A_ON_CPU.thresholds
    assert models.class_thresholds(CLASSED, "gpu-b", "cpu") == B_ON_CPU.thresholds
    assert models.class_thresholds(CLASSED, "cpu", "gpu-a") is None  # never another pair's numbers
    assert models.class_thresholds(CLASSED, "gpu-b", "gpu-a") is None


def test_a_verifier_judges_another_class_by_the_pair_and_refuses_without_one():
    assert registered_thresholds(CLASSED).worst_margin_micro == MODEL.thresholds.worst_margin_micro
    same = registered_thresholds(CLASSED, "gpu-a", "gpu-a")
    assert same.worst_margin_micro == -2_000_000 and same.engine == GPU_A.engine
    cross = registered_thresholds(CLASSED, "gpu-a", "cpu")
    assert cross.worst_margin_micro == -3_000_000 and cross.engine == MODEL.engine
    with pytest.raises(InvalidThresholds, match="engine class 'gpu-b' judged on class 'gpu-a'"):
        registered_thresholds(CLASSED, "gpu-b", "gpu-a")


BAD_MODELS = [
    (classed(classes=(types_pb2.EngineClass(name="cpu", engine="x", thresholds=MODEL.thresholds),), pairs=()),
     "named twice"),
    (classed(classes=(GPU_A, GPU_A), pairs=()), "named twice"),
    (classed(classes=(types_pb2.EngineClass(name="GPU", engine="x", thresholds=MODEL.thresholds),), pairs=()),
     "lowercase ASCII"),
    (classed(classes=(types_pb2.EngineClass(name="gpu-c", engine="", thresholds=MODEL.thresholds),), pairs=()),
     "engine is 1 to 64"),
    (classed(classes=(types_pb2.EngineClass(name="gpu-c", engine="x"),), pairs=()), "carries its thresholds"),
    (classed(classes=(types_pb2.EngineClass(name="gpu-c", engine="x", thresholds=thresholds(5)),), pairs=()),
     "'gpu-c' thresholds"),
    (classed(classes=tuple(types_pb2.EngineClass(name=f"g{i}", engine="x", thresholds=MODEL.thresholds)
                           for i in range(9)), pairs=()), "at most 8 engine classes"),
    (classed(pairs=(types_pb2.ClassPair(executor_class="gpu-z", verifier_class="cpu", thresholds=MODEL.thresholds),)),
     "'gpu-z' is not a class of the model"),
    (classed(pairs=(types_pb2.ClassPair(executor_class="gpu-a", verifier_class="gpu-a", thresholds=MODEL.thresholds),)),
     "judges one class by another"),
    (classed(pairs=(A_ON_CPU, A_ON_CPU)), "listed twice"),
    (classed(pairs=(A_ON_CPU,)), "'gpu-b' needs a class pair 'gpu-b' -> 'cpu'"),
    (classed(pairs=(types_pb2.ClassPair(executor_class="gpu-a", verifier_class="cpu"),)), "carries its thresholds"),
    (classed(pairs=(types_pb2.ClassPair(executor_class="gpu-a", verifier_class="cpu", thresholds=MODEL.thresholds,
                                        detection_ppm=1_000_001),)), "detection_ppm"),
    (classed(classes=tuple(types_pb2.EngineClass(name=f"g{i}", engine="x", thresholds=MODEL.thresholds)
                           for i in range(5)),
             pairs=tuple(types_pb2.ClassPair(executor_class=a, verifier_class=b, thresholds=MODEL.thresholds)
                         for a in ("g0", "g1", "g2", "g3", "g4") for b in ("cpu", "g0", "g1", "g2") if a != b)),
     "at most 16 class pairs"),
]


@pytest.mark.parametrize("model, message", BAD_MODELS)
def test_a_model_breaking_a_class_rule_is_refused_by_name_in_proposals_and_genesis(model, message):
    with pytest.raises(models.InvalidModel, match=re.escape(message)):
        models.check_model(model)
    with pytest.raises(GenesisInvalid, match=re.escape(message)):
        models.model_from_json(models.model_to_json(model), "app_state.models.models[0]")


def test_a_proposal_with_a_bad_class_costs_nothing_and_changes_nothing():
    world = Market.create()
    proposal = classed(classes=(GPU_A, GPU_A), pairs=())
    proposal.source, proposal.size_bytes = "https://example.com/x.gguf", 5
    raw = world.transaction(EXECUTORS[0], propose_model=types_pb2.ProposeModel(model=proposal))
    with pytest.raises(InvalidCall, match="named twice"):
        check_transaction(raw, transaction_rules(world.state))


@settings(max_examples=200)
@given(st.text(max_size=40))
def test_a_class_name_is_accepted_exactly_when_it_is_1_to_32_lowercase_letters_digits_or_dashes(name):
    valid = bool(NAME.fullmatch(name)) and len(name.encode()) <= 32
    assert (models.class_name_problem(name) is None) == valid
    offer = types_pb2.SetOffer(models=[MODEL_ID], price_per_token=1, capacity=1, engine_class=name)
    try:
        check_offer(offer)
        offered = True
    except InvalidOffer:
        offered = False
    assert offered == (valid or name == "")
    job = types_pb2.PostJob(model=MODEL_ID, prompt="p", prompt_format="chat", max_tokens=1, redundancy=1,
                            max_price_per_token=1, sampling=types_pb2.Sampling(top_p_ppm=1), engine_classes=[name])
    try:
        check_post(job)
        posted = True
    except InvalidJob:
        posted = False
    assert posted == valid


# -- offers ------------------------------------------------------------------------------------------


def set_offer(engine_class: str = "", price: int = 1_000, endpoint: str = "") -> dict:
    return dict(set_offer=types_pb2.SetOffer(models=[MODEL_ID], price_per_token=price, capacity=1,
                                             engine_class=engine_class, endpoint=endpoint))


def test_an_offer_in_a_class_the_model_lacks_is_refused_naming_model_class_and_classes():
    world = classed_market("", "", "")
    before = dict(world.state.iter_prefix())
    receipt = world.call(EXECUTORS[0], **set_offer("tpu-v5"))
    assert receipt.error_name == "InvalidOffer"
    assert MODEL_ID.hex() in receipt.error_message and "'tpu-v5'" in receipt.error_message
    assert "cpu, gpu-a, gpu-b" in receipt.error_message
    unchanged(world, receipt, before)


def test_an_offer_stores_its_class_cpu_as_empty_and_a_class_change_is_held_by_the_lock():
    world = classed_market("", "", "")
    receipt = world.ok(EXECUTORS[0], **set_offer("cpu"))
    assert world_offer(world, 0).engine_class == ""
    [event] = [event for event in receipt.events if event.name == "OfferSet"]
    assert {a.key: a.value for a in event.attributes}["engine_class"] == "cpu"
    # An endpoint alone is not held by the lock; a new class is, like a new price.
    world.ok(EXECUTORS[0], **set_offer("cpu", endpoint="node.example:1"))
    locked = world.call(EXECUTORS[0], **set_offer("gpu-a", endpoint="node.example:1"))
    assert locked.error_name == "OfferLocked"
    assert world_offer(world, 0).engine_class == ""
    world.advance(STAKING.offer_lock_blocks)
    world.ok(EXECUTORS[0], **set_offer("gpu-a", endpoint="node.example:1"))
    assert world_offer(world, 0).engine_class == "gpu-a"


def world_offer(world: Market, index: int) -> state_pb2.Offer:
    return staking.read_offer(world.state, EXECUTORS[index].public_key)


# -- jobs --------------------------------------------------------------------------------------------


def post(world: Market, engine_classes, redundancy: int = 1):
    return world.post(engine_classes=list(engine_classes), redundancy=redundancy)


@pytest.mark.parametrize("engine_classes, message", [
    (["gpu-c"], "has no engine class 'gpu-c' (its classes: cpu, gpu-a, gpu-b)"),
])
def test_a_job_naming_a_class_the_model_lacks_is_refused_with_no_state_change(engine_classes, message):
    world = classed_market("", "gpu-a", "gpu-a")
    before = dict(world.state.iter_prefix())
    _, receipt = post(world, engine_classes)
    assert receipt.error_name == "InvalidJob" and message in receipt.error_message
    unchanged(world, receipt, before)


@pytest.mark.parametrize("engine_classes, message", [
    (["gpu-a", "gpu-a"], "each accepted engine class once"),
    ([f"g{i}" for i in range(9)], "at most 8 engine classes"),
    (["GPU"], "lowercase ASCII"),
])
def test_a_job_with_malformed_classes_is_refused_before_the_fee(engine_classes, message):
    request = types_pb2.PostJob(model=MODEL_ID, prompt="p", prompt_format="chat", max_tokens=1, redundancy=1,
                                max_price_per_token=1, sampling=types_pb2.Sampling(top_p_ppm=1),
                                engine_classes=engine_classes)
    with pytest.raises(InvalidJob, match=re.escape(message)):
        check_post(request)


def test_a_job_for_a_class_nobody_offers_is_refused_in_one_line_with_no_state_change():
    world = classed_market("", "gpu-a", "gpu-a")
    before = dict(world.state.iter_prefix())
    _, receipt = post(world, ["gpu-b"])
    assert receipt.error_name == "NoExecutors"
    assert receipt.error_message == f"no executor offers model {MODEL_ID.hex()} in engine class(es) gpu-b"
    unchanged(world, receipt, before)
    # Redundancy counts executors of one class: two gpu-a and one cpu cannot run a job of three.
    _, receipt = post(world, [], redundancy=3)
    assert receipt.error_name == "NoExecutors" and "in one engine class (cpu: 1, gpu-a: 2)" in receipt.error_message


def test_the_accepted_classes_decide_who_is_drawn_and_the_assignment_records_the_class():
    world = classed_market("", "gpu-a", "gpu-a")
    gpu = {EXECUTORS[1].public_key, EXECUTORS[2].public_key}
    for _ in range(4):
        job_id, receipt = post(world, ["gpu-a"])
        assert receipt.success
        (slot,) = world.job(job_id).assignments
        assert slot.executor in gpu and slot.engine_class == "gpu-a"
    job_id, _ = post(world, ["cpu"])
    (slot,) = world.job(job_id).assignments
    assert slot.executor == EXECUTORS[0].public_key and slot.engine_class == ""
    job_id, _ = post(world, ["gpu-a", "gpu-b"], redundancy=2)
    assert {slot.executor for slot in world.job(job_id).assignments} == gpu
    assert read_header(world.state, MODEL_ID).engine_classes == ["cpu", "gpu-a"]


def test_a_job_accepting_several_classes_picks_one_by_the_classes_weights():
    # Three executors of equal stake, reputation and price: cpu holds a third of the weight, gpu-a two thirds.
    world = classed_market("", "gpu-a", "gpu-a")
    counts = drawn_classes(world, a_job(), draws=600)
    assert counts[None] == 0 and set(counts) == {"cpu", "gpu-a"}
    assert 140 <= counts["cpu"] <= 260, counts
    assert drawn_classes(world, a_job(["cpu", "gpu-a"]), draws=600) == counts  # empty accepts every class
    # Two slots: only gpu-a has two executors, so every draw is gpu-a.
    assert drawn_classes(world, a_job(redundancy=2), draws=50) == Counter({"gpu-a": 50})


def test_a_job_with_a_running_result_is_refilled_in_that_class_only():
    held = state_pb2.Assignment(executor=b"\x09" * 32, status=state_pb2.ASSIGNMENT_STATUS_REVEALED,
                                engine_class="gpu-a")
    missed = state_pb2.Assignment(executor=b"\x08" * 32, status=state_pb2.ASSIGNMENT_STATUS_MISSED)
    assert assignment.job_classes(a_job(assignments=[held]), ["cpu", "gpu-a", "gpu-b"]) == ["gpu-a"]
    assert assignment.job_classes(a_job(assignments=[missed]), ["cpu", "gpu-a"]) == ["cpu", "gpu-a"]
    assert assignment.job_classes(a_job(["cpu"], assignments=[held]), ["cpu", "gpu-a"]) == []


def test_the_tables_are_keyed_by_model_class_and_region():
    world = classed_market("", "gpu-a", "gpu-a")
    layer = Overlay(world.state)
    assignment.ensure_tables(layer, MODEL_ID, world.height + 1, JOBS)
    key = Table(MODEL_ID, "gpu-a").key()
    assert key == b"jobs/draw/" + MODEL_ID + b"\x05gpu-a\x00"
    assert Table(MODEL_ID, "gpu-a", "eu").entry_key(1) == b"jobs/draw/" + MODEL_ID + b"\x05gpu-a\x02eu\x00\x00\x00\x01"
    assert layer.get(key) is not None and layer.get(Table(MODEL_ID, "gpu-b").key()) is None
    assert assignment.read_table(layer, Table(MODEL_ID, "gpu-a")).count == 2


def test_an_offer_whose_class_the_model_dropped_is_left_out_of_the_tables():
    world = classed_market("", "gpu-a", "gpu-b")
    layer = Overlay(world.state)
    layer.set(models.MODEL_PREFIX + MODEL_ID, classed(classes=(GPU_A,), pairs=()).SerializeToString(deterministic=True))
    assignment.ensure_tables(layer, MODEL_ID, world.height + 1, JOBS)
    assert read_header(layer, MODEL_ID).engine_classes == ["cpu", "gpu-a"]


def test_the_draw_hooks_declare_a_class_table_per_registered_class_of_the_model():
    from runtime.jobs import weights as job_weights

    world = classed_market("", "gpu-a")
    assert job_weights.class_count(world.state, MODEL_ID) == 3  # cpu, gpu-a, gpu-b
    assert job_weights.class_count(world.state, bytes(32)) == models.MAX_ENGINE_CLASSES + 1  # unknown: the ceiling
    redundancy = JOBS.max_redundancy
    assert (job_weights._job_in_hook(redundancy, 3) - job_weights._job_in_hook(redundancy, 1)
            == 2 * job_weights.REGION_STEPS * job_weights.CLASS_STEP)


# -- the committee ------------------------------------------------------------------------------------


def committee_world(classes: tuple[str, ...]) -> Market:
    """Validators ACCOUNTS[i] serving the classed model in classes[i] ("": cpu)."""
    stakes = tuple(GenesisStake(account.public_key, BOND, True, stake(account, engine_class=name).offer)
                   for account, name in zip(ACCOUNTS, classes))
    return Market(genesis_state(endowed=6, registered=(CLASSED,), stakes=stakes, jobs_params=JOBS,
                                staking_params=STAKING, disputes_params=NO_PROBES))


def judged(world: Market, made_on: str) -> set[int]:
    """Which ACCOUNTS are eligible for the committee of a job whose result was made on `made_on`."""
    executor = bytes([0xEE]) * 32  # not a validator: nobody is excluded for having executed it
    job = a_job(assignments=[state_pb2.Assignment(executor=executor, engine_class=made_on)])
    accounts = {account for account, _, _ in committee.eligible(world.state, job, 1)}
    return {index for index, keypair in enumerate(ACCOUNTS) if keypair.public_key in accounts}


def drawn_from(world: Market, made_on: str, params=NO_PROBES) -> set[int]:
    """Which ACCOUNTS the committee of a job whose result was made on `made_on` is drawn from."""
    job = a_job(assignments=[state_pb2.Assignment(executor=bytes([0xEE]) * 32, engine_class=made_on)])
    accounts = {account for account, _ in committee.draw_pool(world.state, job, 1, params)}
    return {index for index, keypair in enumerate(ACCOUNTS) if keypair.public_key in accounts}


def test_a_committee_is_drawn_from_every_class_with_thresholds_for_the_jobs_results_and_no_other():
    world = committee_world(("", "", "gpu-a", "gpu-a", "gpu-b", ""))
    # A gpu-a result: its own class and cpu (by the pair); never gpu-b, which has no numbers for it.
    assert judged(world, "gpu-a") == {0, 1, 2, 3, 5}
    # A cpu result: the cpu validators; no gpu class has a pair judging cpu results.
    assert judged(world, "") == {0, 1, 5}


def test_the_results_own_class_is_drawn_alone_only_while_it_holds_two_thirds_of_the_eligible_stake():
    # Equal stakes. gpu-a holds 2 of the 5 eligible for its results: a minority, never drawn alone (its two
    # validators would be its executors' partners judging them); every eligible validator is drawn from.
    world = committee_world(("", "", "gpu-a", "gpu-a", "gpu-b", ""))
    assert drawn_from(world, "gpu-a") == {0, 1, 2, 3, 5}
    # 4 of 5 (80% >= 2/3): the gpu-a validators alone, who re-score gpu-a results exactly.
    world = committee_world(("", "gpu-a", "gpu-a", "gpu-a", "gpu-b", "gpu-a"))
    assert drawn_from(world, "gpu-a") == {1, 2, 3, 5}
    # The share is a genesis parameter: at 10^6 only a pool of that class alone is one.
    assert drawn_from(world, "gpu-a", replace(NO_PROBES, same_class_share_ppm=1_000_000)) == {0, 1, 2, 3, 5}
    # Too few of the class for the committee all the eligible would give (5 seats, 4 of gpu-a): everyone eligible,
    # whatever min_committee_size; with 4 seats, the class alone.
    assert drawn_from(world, "gpu-a", replace(NO_PROBES, committee_size=5)) == {0, 1, 2, 3, 5}
    assert drawn_from(world, "gpu-a", replace(NO_PROBES, min_committee_size=5, committee_size=5)) == {0, 1, 2, 3, 5}
    assert drawn_from(world, "gpu-a", replace(NO_PROBES, committee_size=4)) == {1, 2, 3, 5}
    # A cpu result among cpu validators holding 3 of 3 eligible: the same pool as before the rule.
    world = committee_world(("", "", "gpu-a", "gpu-a", "gpu-b", ""))
    assert drawn_from(world, "") == judged(world, "") == {0, 1, 5}


def test_a_same_class_share_below_half_is_refused_at_genesis():
    with pytest.raises(ValueError, match="same_class_share_ppm is 499999, below 500000"):
        replace(NO_PROBES, same_class_share_ppm=499_999).validate()
