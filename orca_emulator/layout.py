"""Where the emulated instances live on disk: the one contract between the emulator and
the commands (`orca local up`, `orca local agent stop`) that manage its fleet."""

from __future__ import annotations

from pathlib import Path

__all__ = [
    "INSTANCE_PROFILE_NAME",
    "INSTANCE_ROLE_NAME",
    "agent_stopped_flag",
    "instance_dir",
    "instances_dir",
]

# The instance profile `orca local up` gives the fleet; SSM manages an emulated instance
# only when it has an instance profile, as AWS does (the agent needs its credentials).
INSTANCE_PROFILE_NAME = "OrcaSandboxInstance"
INSTANCE_ROLE_NAME = "OrcaSandboxInstanceRole"


def instances_dir(home: Path) -> Path:
    """The directory holding one directory per emulated instance."""
    return home / "sandbox" / "instances"


def instance_dir(home: Path, instance_id: str) -> Path:
    """The instance's own directory: its disk, so to speak (HOME, TMPDIR, command files)."""
    return instances_dir(home) / instance_id


def agent_stopped_flag(home: Path, instance_id: str) -> Path:
    """Present while the instance's SSM agent is stopped (`orca local agent stop`)."""
    return instance_dir(home, instance_id) / "agent-stopped"
