"""Orca's one logger tree: every Orca module logs under ``orca.<concept>``.

``orca_flows.worker.claims`` logs as ``orca.worker.claims``, ``orca_blocks.credentials`` as
``orca.blocks.credentials``, ``ui.session`` as ``orca.ui.session``; so one handler on
``orca`` (see ``configure_logging``) shows every Orca line exactly once.
"""

from __future__ import annotations

import logging

__all__ = ["ROOT_LOGGER", "get_logger"]

ROOT_LOGGER = "orca"
_PACKAGES = {"orca_flows": "", "orca_blocks": "blocks", "ui": "ui", "deployments": "deployments"}


def get_logger(module: str) -> logging.Logger:
    """The logger of an Orca module; pass ``__name__``.

    Args:
        module: The module's dotted name (``orca_flows.worker.claims``), or a concept
            name already under ``orca`` (``orca.serve``).
    """
    if module == ROOT_LOGGER or module.startswith(ROOT_LOGGER + "."):
        return logging.getLogger(module)
    package, _, rest = module.partition(".")
    prefix = _PACKAGES.get(package)
    if prefix is None:
        parts = [module]
    else:
        parts = [part for part in (prefix, rest) if part]
    return logging.getLogger(".".join([ROOT_LOGGER, *parts]))
