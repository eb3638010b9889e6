"""The `orca` command line: thin typer commands over Orca's services."""
