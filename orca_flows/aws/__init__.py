"""Thin wrappers over the AWS services Orca uses; each takes an injected client."""
