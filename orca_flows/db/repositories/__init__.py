"""Repository functions: each takes a ``Session`` first, flushes, and never commits."""
