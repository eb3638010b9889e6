"""Serve entry point: `python deployments/serve.py` does what `orca serve` does."""

from orca_flows.flows.serving import serve_schedules
from orca_flows.logs import configure_logging
from orca_flows.settings import get_settings

if __name__ == "__main__":  # the Runner's flow-run subprocesses re-import this module
    configure_logging()
    serve_schedules(get_settings())
