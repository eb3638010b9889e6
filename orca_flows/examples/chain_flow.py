"""Example Prefect flow: two Orca pipelines in sequence, the first one's output feeding the second.

Run it with ``python -m orca_flows.examples.chain_flow [FIRST] [SECOND]`` (defaults:
``extract`` then ``load``); the acting user is ORCA_USER. The second pipeline's script
reads the first one's output URI from ``$INPUT_URI`` (see ``chain_load.sh`` here).
"""

from __future__ import annotations

import sys

from prefect import flow

from orca_flows.tasks import run_pipeline

__all__ = ["chain"]


@flow(name="orca-chain-example", log_prints=True)
def chain(first: str = "extract", second: str = "load") -> list[str]:
    """Run ``first``, then ``second`` with INPUT_URI = ``first``'s first output URI.

    Returns the second run's output URIs.
    """
    produced = run_pipeline(first)
    if not produced.output_uris:
        raise ValueError(f"pipeline {first!r} left no output file to pass on.")
    consumed = run_pipeline(second, parameters={"INPUT_URI": produced.output_uris[0]})
    print(f"{first} -> {second}: {', '.join(consumed.output_uris) or 'no outputs'}")
    return list(consumed.output_uris)


if __name__ == "__main__":
    chain(*sys.argv[1:3])
