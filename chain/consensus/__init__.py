"""Tendermint BFT consensus (Buchman, Kwon, Milosevic, "The latest gossip on BFT consensus", 2018).

`machine.py` is the pure state machine of one validator: messages and timeouts in, messages,
timers, decisions and evidence out, no clock, network or disk. `proposer.py` chooses the
proposer of each round by weighted round-robin. The node drives the machine over gRPC; the
simulation in tests/consensus drives it over a virtual network.
"""
