"""Saving, loading and deleting Orca's block documents, with Prefect outages made clear."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import httpx
from prefect.blocks.core import Block
from prefect.exceptions import ObjectNotFound, PrefectHTTPStatusError

from orca_flows.errors import NotFoundError, PrefectUnavailableError

__all__ = ["delete_block", "load_block", "save_block"]

B = TypeVar("B", bound=Block)
T = TypeVar("T")


def _call(action: str, function: Callable[[], T]) -> T:
    try:
        return function()
    except (httpx.TransportError, PrefectHTTPStatusError, RuntimeError) as error:
        if isinstance(error, RuntimeError) and "API" not in str(error):
            raise
        raise PrefectUnavailableError(
            f"could not {action} in Prefect: {error}. Start a Prefect server "
            "(`orca local up` or `prefect server start`) or fix PREFECT_API_URL."
        ) from error


def save_block(block: Block, name: str) -> None:
    """Save ``block`` as document ``name`` (replacing one left by an interrupted attempt)."""
    _call(f"save block {name!r}", lambda: block.save(name, overwrite=True))


def load_block(block_type: type[B], name: str) -> B:
    """Load document ``name`` of ``block_type``.

    Raises:
        NotFoundError: There is no such document.
    """

    def load() -> B:
        try:
            return block_type.load(name)  # type: ignore[return-value]
        except ValueError as error:  # Prefect's "Unable to find block document named ..."
            raise NotFoundError("block document", name, "Re-create the link.") from error

    return _call(f"load block {name!r}", load)


def delete_block(block_type: type[Block], name: str) -> None:
    """Delete document ``name`` of ``block_type``; a missing one is not an error."""

    def delete() -> None:
        try:
            block_type.delete(name)
        except (ObjectNotFound, ValueError):  # ValueError: "Unable to find block document"
            pass

    _call(f"delete block {name!r}", delete)
