"""A running node: the core (store, pool, block production) and its gRPC and metrics edges."""
