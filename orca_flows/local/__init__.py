"""Local development: the sandbox's processes and the demo (imported by the CLI only)."""
