"""Fault testing with real processes: hostile peers (hostile.py), a devnet to break (devnet.py), the cases (cases.py).

Used by tests/e2e/test_faults.py (short) and bench/faults.py (longer); docs/operator.md, "Fault testing".
"""
