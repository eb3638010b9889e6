"""Environment variables for a script: a pipeline's, and a run's parameters (one rule)."""

from __future__ import annotations

import re
from collections.abc import Mapping

from orca_flows.errors import InvalidInputError

__all__ = [
    "ENV_NAME_PATTERN",
    "MAX_ENV_TOTAL_CHARS",
    "MAX_ENV_VARIABLES",
    "RESERVED_ENV",
    "check_environment",
]


ENV_NAME_PATTERN = r"[A-Z_][A-Z0-9_]*"
RESERVED_ENV = frozenset({"ORCA_RUN_ID", "ORCA_PIPELINE", "ORCA_OUTPUT_DIR"})
# A run's parameters travel inside the SSM command (SendCommand's document parameters are
# capped near 64 KB in all); these bounds keep the whole command well inside that.
MAX_ENV_VARIABLES = 64
MAX_ENV_TOTAL_CHARS = 16_384


def check_environment(values: Mapping[str, str], *, field: str = "environment") -> dict[str, str]:
    """Environment variables for a script (a pipeline's, or a run's parameters).

    Raises:
        InvalidInputError: A name that is not A-Z, 0-9 and _ (not starting with a digit),
            one Orca sets itself, a value that is not text or holds a NUL byte, or more
            than MAX_ENV_VARIABLES / MAX_ENV_TOTAL_CHARS in all.
    """
    checked: dict[str, str] = {}
    for name, value in values.items():
        if (
            not isinstance(name, str)
            or not re.fullmatch(ENV_NAME_PATTERN, name, flags=re.ASCII)
            or name in RESERVED_ENV
        ):
            raise InvalidInputError(
                field,
                f"{name!r} cannot be an environment variable name: use A-Z, 0-9 and _, "
                "not starting with a digit, and not ORCA_RUN_ID, ORCA_PIPELINE or "
                "ORCA_OUTPUT_DIR (Orca sets those).",
            )
        if not isinstance(value, str) or "\0" in value:
            raise InvalidInputError(field, f"the value of {name} must be text without NUL bytes.")
        checked[name] = value
    size = sum(len(name) + len(value) for name, value in checked.items())
    if len(checked) > MAX_ENV_VARIABLES or size > MAX_ENV_TOTAL_CHARS:
        raise InvalidInputError(
            field,
            f"{len(checked)} variables of {size} characters in all: at most "
            f"{MAX_ENV_VARIABLES} and {MAX_ENV_TOTAL_CHARS} characters; pass larger data "
            "through S3 (an s3:// URI as the value).",
        )
    return checked
