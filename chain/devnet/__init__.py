"""A local network of validators on one machine: `inferchain devnet`.

layout.py decides what lies where (keys, the derived genesis, addresses and ports, devnet.json),
launcher.py runs the node processes (start, readiness, stop), status.py reads and shows them,
control.py takes commands from other terminals (`inferchain devnet stop|start|restart NAME`).
"""
