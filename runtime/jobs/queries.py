"""jobs queries: one job with its assignments and reveals, and the market's parameters."""

from __future__ import annotations

from proto import state_pb2
from runtime.jobs.params import PARAMS
from runtime.jobs.storage import read_job
from runtime.module import ACCOUNT, AMOUNT, HASH, INTEGER, TEXT, QuerySpec, params_query, require_id
from runtime.state import StateReader


def query_job(state: StateReader, request: state_pb2.JobQuery) -> state_pb2.Job:
    """A job as stored: request, status, assignments, reveals, payments; KeyError when none has this id."""
    job = read_job(state, require_id(request.job_id, "job_id"))
    if job is None:
        raise KeyError(f"job {request.job_id.hex()}")
    return job


QUERIES = (
    QuerySpec(name="job", doc="A job: its request, status, assignments, reveals and payments.",
              request=state_pb2.JobQuery, response=state_pb2.Job, handler=query_job,
              fields={"job_id": HASH, "id": HASH, "poster": ACCOUNT, "posted_height": INTEGER,
                      "timeout_height": INTEGER, "escrow": AMOUNT, "output_digest": HASH, "final_height": INTEGER,
                      "protocol_fee": AMOUNT, "refunded": AMOUNT, "reason": TEXT}),
    params_query(PARAMS),
)
