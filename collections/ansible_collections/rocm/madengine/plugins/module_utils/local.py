"""The local target: every model of the manifest in a container on this host, one after another."""

from __future__ import annotations

import os
from typing import Any, Dict, List, Mapping, Optional

from . import atomic
from .deployment import LOCAL, DeployRequest, Target
from .errors import ConfigError
from .hostinfo import HostInfo, detect_host
from .reporting import Reporter
from .run import RunOutcome, run_entries


class LocalTarget(Target):
    """Submitting is running: each model's container is waited for, stopped on a signal and its rows appended
    to perf.csv as it ends (run.run_entries), so there is nothing left to wait for or cancel afterwards."""

    name = LOCAL
    handles_signals = True
    builds_for_this_host = True
    writes_rows = True

    def __init__(self, request: DeployRequest, reporter: Reporter) -> None:
        super().__init__(request, reporter)
        self.host: Optional[HostInfo] = request.host
        self.run: RunOutcome = request.results if request.results is not None else RunOutcome()

    def prepare(self) -> None:
        if not self.request.manifest.get("built_images") and not self.run.rows:
            raise ConfigError(
                f"--manifest-file {os.path.relpath(self.request.manifest_path, self.request.root)}: "
                "lists no images, nothing to run",
                hint="build the models first (madengine build --tags ...)",
            )
        self.host = self.host or detect_host(overrides=self.request.context)

    def submit(self) -> None:
        host = self.host or detect_host(overrides=self.request.context)
        run_entries(self.request.root, self.request.manifest, host, self.request.options, self.reporter, self.run)
        self.outcome.interrupted = self.run.interrupted

    def wait(self) -> None:
        """Nothing to wait for: submit ran every model to its end."""

    def collect(self) -> None:
        if self.built_here:
            write_combined_logs(self.request.root, self.request.manifest)

    def rows(self) -> List[Dict[str, Any]]:
        return list(self.run.rows)

    def cancel(self, reason: str) -> None:
        """Nothing to cancel: the running model's container was stopped and removed when the signal came."""


def write_combined_logs(root: str, data: Mapping[str, Any]) -> None:
    """<base>.live.log = build log + a banner + run log, for tools that read the original's combined log."""
    banner = "\n" + "=" * 80 + "\nRUN PHASE LOG\n" + "=" * 80 + "\n\n"
    for record in (data.get("built_images") or {}).values():
        build_log = str(record.get("log_file") or "")
        if not build_log.endswith(".build.live.log"):
            continue
        base = build_log[: -len(".build.live.log")]
        build_path, run_path = os.path.join(root, build_log), os.path.join(root, base + ".run.live.log")
        if os.path.isfile(build_path) and os.path.isfile(run_path):
            with atomic.replacing(os.path.join(root, base + ".live.log")) as out:
                for index, path in enumerate((build_path, run_path)):
                    with open(path, encoding="utf-8", errors="replace") as part:
                        out.write(part.read())
                    if index == 0:
                        out.write(banner)
