"""`orca worker`: takes runs off the linked accounts' FIFO queues and executes them."""

from orca_flows.worker.worker import Worker, WorkerOptions

__all__ = ["Worker", "WorkerOptions"]
