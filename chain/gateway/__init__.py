"""The HTTP gateway: an OpenAI-compatible API over the chain's jobs, and the explorer."""
