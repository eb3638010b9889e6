"""Installs the transaction guard in every Python process the tests start (CLI, workers).

Only on the tests' PYTHONPATH (see ``tests.support.transaction_guard.subprocess_env``),
and only when ``ORCA_TX_GUARD_SUBPROCESS_LOG`` names a file: each violation is appended to
it at once as one JSON line, so a worker killed with SIGKILL has still reported it.
"""

import os

if os.environ.get("ORCA_TX_GUARD_SUBPROCESS_LOG"):
    try:
        from tests.support.transaction_guard import record_to_file
    except ImportError:  # pragma: no cover - the repository root is not on the path
        pass
    else:
        record_to_file(os.environ["ORCA_TX_GUARD_SUBPROCESS_LOG"])
