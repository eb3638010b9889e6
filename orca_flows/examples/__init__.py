"""Example pipelines shipped with Orca (used by `orca demo`)."""

from pathlib import Path

EXAMPLES = Path(__file__).parent

__all__ = ["EXAMPLES"]
