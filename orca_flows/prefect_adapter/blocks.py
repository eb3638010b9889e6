"""Saving, loading and deleting Orca's block documents, with Prefect outages made clear."""

from __future__ import annotations

from typing import TypeVar

from prefect.blocks.core import Block
from prefect.exceptions import ObjectNotFound
from prefect.utilities.asyncutils import run_coro_as_sync

from orca_flows.errors import NotFoundError
from orca_flows.prefect_adapter.api import prefect_errors

__all__ = ["delete_block", "load_block", "save_block"]

B = TypeVar("B", bound=Block)

# Block's sync save/load/delete pick their sync or async implementation from the caller's
# Prefect run context, and `asyncio.to_thread` copies that context: called from a worker
# thread of the async `orca-run` flow they would hand back an un-awaited coroutine. So
# these sync helpers always run Block's public async methods to completion instead.


def save_block(block: Block, name: str) -> None:
    """Save ``block`` as document ``name`` (replacing one left by an interrupted attempt).

    Raises:
        PrefectUnavailableError: The Prefect API cannot be reached.
    """
    with prefect_errors(f"save block {name!r}"):
        run_coro_as_sync(block.asave(name, overwrite=True))


def load_block(block_type: type[B], name: str) -> B:
    """Load document ``name`` of ``block_type``.

    Raises:
        NotFoundError: There is no such document.
        PrefectUnavailableError: The Prefect API cannot be reached.
    """
    with prefect_errors(f"load block {name!r}"):
        try:
            return run_coro_as_sync(block_type.aload(name))
        except ValueError as error:  # Prefect's "Unable to find block document named ..."
            raise NotFoundError("block document", name, "Re-create the link.") from error


def delete_block(block_type: type[Block], name: str) -> None:
    """Delete document ``name`` of ``block_type``; a missing one is not an error.

    Raises:
        PrefectUnavailableError: The Prefect API cannot be reached.
    """
    with prefect_errors(f"delete block {name!r}"):
        try:
            run_coro_as_sync(block_type.adelete(name))
        except (ObjectNotFound, ValueError):  # ValueError: "Unable to find block document"
            pass
