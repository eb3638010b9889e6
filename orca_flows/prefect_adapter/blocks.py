"""Saving, loading and deleting Orca's block documents, with Prefect outages made clear."""

from __future__ import annotations

from typing import TypeVar

from prefect.blocks.core import Block
from prefect.exceptions import ObjectNotFound

from orca_flows.errors import NotFoundError
from orca_flows.prefect_adapter.api import prefect_errors

__all__ = ["delete_block", "load_block", "save_block"]

B = TypeVar("B", bound=Block)


def save_block(block: Block, name: str) -> None:
    """Save ``block`` as document ``name`` (replacing one left by an interrupted attempt).

    Raises:
        PrefectUnavailableError: The Prefect API cannot be reached.
    """
    with prefect_errors(f"save block {name!r}"):
        block.save(name, overwrite=True)


def load_block(block_type: type[B], name: str) -> B:
    """Load document ``name`` of ``block_type``.

    Raises:
        NotFoundError: There is no such document.
        PrefectUnavailableError: The Prefect API cannot be reached.
    """
    with prefect_errors(f"load block {name!r}"):
        try:
            return block_type.load(name)  # type: ignore[return-value]
        except ValueError as error:  # Prefect's "Unable to find block document named ..."
            raise NotFoundError("block document", name, "Re-create the link.") from error


def delete_block(block_type: type[Block], name: str) -> None:
    """Delete document ``name`` of ``block_type``; a missing one is not an error.

    Raises:
        PrefectUnavailableError: The Prefect API cannot be reached.
    """
    with prefect_errors(f"delete block {name!r}"):
        try:
            block_type.delete(name)
        except (ObjectNotFound, ValueError):  # ValueError: "Unable to find block document"
            pass
