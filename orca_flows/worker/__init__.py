"""`orca worker`: takes runs off the linked accounts' FIFO queues and executes them."""

from orca_flows.worker.worker import Worker, WorkerOptions, run_worker

__all__ = ["Worker", "WorkerOptions", "run_worker"]
