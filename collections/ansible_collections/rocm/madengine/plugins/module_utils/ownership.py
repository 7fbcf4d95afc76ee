"""Which process a container or run directory belongs to, and whether that process still lives."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from typing import Any, Dict, Mapping, Optional

RUN_LABEL = "org.madengine.run-id"
MODEL_LABEL = "org.madengine.model"
HOST_LABEL = "org.madengine.host"
PID_LABEL = "org.madengine.pid"
PID_START_LABEL = "org.madengine.pid-start"
KEEP_LABEL = "org.madengine.keep"


def process_start(pid: int) -> str:
    """The process's start time in clock ticks since boot ('' when there is no such process): with the pid it
    names one process, even after the pid is reused."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as handle:
            text = handle.read()
    except OSError:
        return ""
    fields = text.rsplit(")", 1)[-1].split()
    return fields[19] if len(fields) > 19 else ""


@dataclass(frozen=True)
class Owner:
    run_id: str
    host: str
    pid: int
    pid_start: str

    def labels(self, model: str = "", keep: bool = False) -> Dict[str, str]:
        labels = {
            RUN_LABEL: self.run_id,
            HOST_LABEL: self.host,
            PID_LABEL: str(self.pid),
            PID_START_LABEL: self.pid_start,
        }
        if model:
            labels[MODEL_LABEL] = model
        if keep:
            labels[KEEP_LABEL] = "true"
        return labels

    def as_dict(self) -> Dict[str, Any]:
        return {"run_id": self.run_id, "host": self.host, "pid": self.pid, "pid_start": self.pid_start}

    @classmethod
    def from_labels(cls, labels: Mapping[str, str]) -> Optional[Owner]:
        """None for a container without our owner labels (an older madengine's, or not ours)."""
        try:
            return cls(labels[RUN_LABEL], labels[HOST_LABEL], int(labels[PID_LABEL]), labels.get(PID_START_LABEL, ""))
        except (KeyError, ValueError):
            return None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Optional[Owner]:
        try:
            return cls(str(data["run_id"]), str(data["host"]), int(data["pid"]), str(data.get("pid_start") or ""))
        except (KeyError, TypeError, ValueError):
            return None

    def alive(self) -> bool:
        """Whether the owning process still runs. A process of another host cannot be seen: counted as alive."""
        if self.host != socket.gethostname():
            return True
        start = process_start(self.pid)
        return bool(start) and (not self.pid_start or start == self.pid_start)


def this_process(run_id: str) -> Owner:
    pid = os.getpid()
    return Owner(run_id, socket.gethostname(), pid, process_start(pid))
