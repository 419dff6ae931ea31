"""The inferchain node client: crypto, storage, mempool, block production, gRPC API, CLI."""
