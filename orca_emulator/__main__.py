"""``python -m orca_emulator --home DIR [moto.server options]``: the sandbox's emulator.

moto's server, with the SSM agent of the emulated instances patched in (``ssm_api``).
When the emulator stops, its instances stop too: every process they run is killed.
"""

from __future__ import annotations

import argparse
import atexit
import sys
from pathlib import Path

from moto import server

from orca_emulator.ssm_api import install


def main(argv: list[str] | None = None) -> None:
    """Start the emulator; ``--home`` is the sandbox's ORCA_HOME, the rest goes to moto."""
    parser = argparse.ArgumentParser(prog="python -m orca_emulator", add_help=False)
    parser.add_argument("--home", type=Path, required=True)
    parser.add_argument("-H", "--host", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, required=True)
    args, rest = parser.parse_known_args(sys.argv[1:] if argv is None else argv)
    agent = install(args.home, f"http://{args.host}:{args.port}")
    atexit.register(agent.terminate_all)
    server.main(["-H", args.host, "-p", str(args.port), *rest])


if __name__ == "__main__":
    main()
