"""Orca's one logger tree: every Orca module logs under ``orca.<concept>``.

``orca_flows.worker.claims`` logs as ``orca.worker.claims``, ``orca_blocks.credentials`` as
``orca.blocks.credentials``, ``ui.session`` as ``orca.ui.session``; so one level on
``orca`` (see ``configure_logging``) shows every Orca line, each exactly once.
"""

from __future__ import annotations

import logging

__all__ = ["ROOT_LOGGER", "configure_logging", "get_logger"]

ROOT_LOGGER = "orca"
# Prefect's console format, for when Orca prints without Prefect's handler.
_FORMAT = "%(asctime)s.%(msecs)03d | %(levelname)-7s | %(name)s - %(message)s"
_DATE_FORMAT = "%H:%M:%S"
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


def configure_logging(level: int | str = logging.INFO) -> None:
    """Show every Orca line at ``level`` or above, each printed once (`orca worker`, `serve`).

    Orca's loggers get the level and keep propagating to the root logger, whose handlers
    print them: the console handler Prefect installs on the root when it is imported, or
    one added here when the root has none (Prefect then leaves a root handler it finds
    alone). Orca never puts a handler on ``orca`` itself: a propagated record reaches the
    root's handlers whatever the root's level, so a second handler printed each line twice.
    Calling this again only changes the level.

    Args:
        level: The lowest level shown, e.g. ``logging.INFO`` or ``"DEBUG"``.
    """
    orca = logging.getLogger(ROOT_LOGGER)
    orca.setLevel(level)
    orca.propagate = True
    root = logging.getLogger()
    if not root.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter(_FORMAT, _DATE_FORMAT))
        root.addHandler(handler)
