from chain.cli import run

run()
