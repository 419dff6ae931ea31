"""disputes: verdicts on revealed results — disputes opened, committees drawn, votes committed and revealed, judged.

A dispute opens when a job's revealed digests differ or fall short of its quorum
(runtime/jobs/settlement.py), when a settled job is drawn for an audit, or on a bonded
challenge. A stake-weighted committee of validators serving the model, drawn from the RANDAO
mix, commits to its votes, then reveals them; the stake-weighted majority per candidate decides,
and the slashes, rewards, payments and refunds follow (verdict.py). Across jobs, the committees'
re-score statistics accumulate per executor and model (evidence.py).

Files, in the shape of every module: params.py, storage.py, errors.py, events.py, recipes.py (vote
encoding and commitment, audit point, committee seed), committee.py (the draw), opening.py (open a
dispute, schedule an audit; imported by runtime/jobs/settlement.py), calls.py (challenge,
commit_vote, reveal_vote), sealed.py (sealed probes: seal_probe, open_probe, and the seals' pruning),
verdict.py, evidence.py, hooks.py, queries.py, weights.py, genesis.py, spec.py (the declaration).
conviction.py holds the binomial test of the evidence.

This package imports nothing here: runtime/jobs/settlement.py imports opening.py, and verdict.py
imports runtime/jobs/settlement.py, so a re-export here would close an import cycle.
"""
