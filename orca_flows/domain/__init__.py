"""Orca's domain: states, rules, the S3 layout and ordering keys, with no I/O at all."""
