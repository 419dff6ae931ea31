"""The executor worker: runs the jobs the chain assigns to one account, then commits and reveals them;
and votes in the dispute committees the account is drawn for.

`inferchain worker --node HOST:PORT --key FILE` runs it alone (a GPU box serving a validator); a
node whose validator key has an offer starts it in a separate process (supervisor.py), so the
engine never shares a process, or a lock, with block production.

The parts, each owning one concern:
  follower.py    the executor's assignments block by block (one WatchAssignments stream), job records at start
  executor.py    the engine: loaded models, one thread per running job
  journal.py     what must outlive a restart: each job's salt and result, in a small file
  submitter.py   building, signing and submitting CommitResult and RevealResult
  worker.py      the event loop that owns the worker's state and decides each job's next step
  juror.py       committee duties: re-score each candidate of a dispute the account is drawn for, commit, reveal
  juror_journal.py  what a vote must outlive a restart with: each dispute's salt and votes
  supervisor.py  the node's side: start the worker while the key has an offer, stop it with the node
"""
