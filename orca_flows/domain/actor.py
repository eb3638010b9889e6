"""Who is acting: the signed-in or named user a use case works for (ids, not ORM rows)."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Actor"]


@dataclass(frozen=True)
class Actor:
    """The user a use case acts for; every use case scopes what it reads and writes to it.

    Attributes:
        user_id: The user's id.
        email: The user's (case-folded) email.
        is_operator: The user runs this Orca (`orca user add --operator`): only operators
            are shown Prefect's UI, which holds every user's credentials and logs.
    """

    user_id: int
    email: str
    is_operator: bool = False
