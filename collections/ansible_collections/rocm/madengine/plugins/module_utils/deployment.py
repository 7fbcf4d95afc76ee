"""One lifecycle for every place a model can run: prepare → submit → wait → collect → rows, cancel on interruption.

A target (local Docker, SLURM, Kubernetes) implements the steps; `deploy` drives them, so the CLI and the modules
call one entry point and never branch on the target. A new target is a `Target` subclass plus one line in
`target_class`.
"""

from __future__ import annotations

import contextlib
import signal
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Iterator, List, Mapping, Optional, Type

from . import interrupts
from .errors import ConfigError
from .reporting import Reporter

LOCAL, SLURM, KUBERNETES = "local", "slurm", "kubernetes"
_DEPLOY_VALUES = {"local": LOCAL, "docker": LOCAL, "slurm": SLURM, "k8s": KUBERNETES, "kubernetes": KUBERNETES}


def target_name(ctx: Mapping[str, Any]) -> str:
    """The target the run context asks for: a `slurm`, `k8s` or `kubernetes` section, else `deploy`, else local."""
    sections = [name for name in ("slurm", "k8s", "kubernetes") if name in ctx]
    if "k8s" in sections and "kubernetes" in sections:
        raise ConfigError("additional context has both 'k8s' and 'kubernetes'", hint="keep one of them")
    chosen = {SLURM if name == "slurm" else KUBERNETES for name in sections}
    deploy = str(ctx.get("deploy") or "").strip().lower()
    if deploy:
        if deploy not in _DEPLOY_VALUES:
            raise ConfigError(
                f"additional context key 'deploy': '{ctx['deploy']}' is not a target",
                hint="use 'local', 'slurm' or 'k8s'",
            )
        chosen.add(_DEPLOY_VALUES[deploy])
    if len(chosen - {LOCAL}) > 1 or (LOCAL in chosen and len(chosen) > 1):
        raise ConfigError(
            f"additional context names several targets ({', '.join(sorted(chosen))})", hint="keep one of them"
        )
    return chosen.pop() if chosen else LOCAL


@dataclass
class DeployRequest:
    """What every target gets: the package, the manifest, the run's options (context, run id, timeout)."""

    root: str
    manifest: Mapping[str, Any]
    manifest_path: str
    options: Any  # run.RunOptions
    check_mode: bool = False  # validate and report what would change; submit nothing
    submit: bool = True  # False: prepare only (madengine generate ...)
    results: Any = None  # run.RunOutcome that already holds this run's earlier rows (failed builds)
    host: Any = None  # hostinfo.HostInfo of this host, when the caller detected it already

    @property
    def context(self) -> Mapping[str, Any]:
        context: Mapping[str, Any] = self.options.context
        return context

    @property
    def run_id(self) -> str:
        return str(self.options.run_id)


@dataclass
class DeployOutcome:
    """What a target reports; `rows` holds one or more rows for every model it was given."""

    target: str
    rows: List[Dict[str, Any]] = field(default_factory=list)
    job_records: List[Dict[str, Any]] = field(default_factory=list)  # model, job_name, job_id, state, reason, ...
    results_dir: str = ""
    changed: bool = False
    submitted: List[str] = field(default_factory=list)
    cancelled: List[str] = field(default_factory=list)
    collected: bool = False  # False after check mode, generate, or submitting without waiting
    newly_collected: bool = True  # False when these rows were collected (and written) by an earlier call
    interrupted: Optional[interrupts.Interrupted] = None
    files: List[str] = field(default_factory=list)  # what prepare wrote (scripts, manifests)
    details: Dict[str, Any] = field(default_factory=dict)  # target-specific extras for module results

    def jobs(self) -> List[Dict[str, Any]]:
        """One record per model: model, job_name, job_id, state, exit_code, reason."""
        return list(self.job_records)


class Target:
    """The steps of a deployment. `prepare` validates and renders without side effects elsewhere; `submit` starts
    the work; `wait` returns when everything ended; `collect` fetches what the work left; `rows` turns it into
    perf rows; `cancel` stops what was submitted (Ctrl-C, SIGTERM, a wait timeout)."""

    name = ""
    waits = True  # False: submit and return (collect later with the same run id)
    handles_signals = False  # True: submit/wait stop their own work on a signal (the local target)
    writes_rows = False  # True: the target appends each model's rows to perf.csv itself, as the model ends
    builds_for_this_host = False  # True: a build before the run targets this host's GPU vendor and architecture
    built_here = False  # the manifest was built by this process, just before

    def __init__(self, request: DeployRequest, reporter: Reporter) -> None:
        self.request = request
        self.reporter = reporter
        self.outcome = DeployOutcome(target=self.name)

    def prepare(self) -> None:
        raise NotImplementedError

    def check(self) -> None:
        """Check mode: ask the target whether the submission would be accepted; change nothing."""

    def submit(self) -> None:
        raise NotImplementedError

    def wait(self) -> None:
        raise NotImplementedError

    def collect(self) -> None:
        raise NotImplementedError

    def rows(self) -> List[Dict[str, Any]]:
        raise NotImplementedError

    def cancel(self, reason: str) -> None:
        raise NotImplementedError

    def finish(self) -> None:
        """After the rows: clean up what the policy says (finished jobs, secrets)."""

    def known_jobs(self) -> Dict[str, str]:
        """The jobs an earlier call recorded for this run id, by name, with their state (without asking the target)."""
        return {}

    def stop(self, check_mode: bool = False) -> List[str]:
        """Cancel or delete every job of this run id, wherever it is (state=absent); the names it stopped."""
        raise ConfigError(f"stopping a run is not supported on the {self.name} target")


@contextlib.contextmanager
def interruptible(on_interrupt: Callable[[interrupts.Interrupted], None]) -> Iterator[None]:
    """Ctrl-C, SIGTERM or SIGHUP inside the block (a submission or a wait, safe to cut short): call on_interrupt
    with the signal and carry on after the block, so the rows that say so are still written."""
    handled = (signal.SIGTERM, signal.SIGHUP)
    previous: Dict[int, Any] = {}

    def handler(signum: int, _frame: Any) -> None:
        # A BaseException: no `except Exception` on the way (an API client's, a parser's) may swallow it.
        raise interrupts.Interrupted(signum)

    with contextlib.suppress(ValueError):  # not the main thread: signals stay with their owner
        previous = {sig: signal.signal(sig, handler) for sig in handled}
    try:
        with interrupts.allowed():
            yield
    except KeyboardInterrupt:
        on_interrupt(interrupts.Interrupted(signal.SIGINT))
    except interrupts.Interrupted as exc:
        on_interrupt(exc)
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def deploy(target: Target) -> DeployOutcome:
    """Drive `target` through the lifecycle; every model it was given ends with rows unless it only prepared."""
    outcome, request = target.outcome, target.request
    target.prepare()
    if request.check_mode:
        target.check()
        return outcome
    if not request.submit:
        return outcome

    def interrupted(exc: interrupts.Interrupted) -> None:
        target.reporter.warn(f"interrupted by {exc.name}; cancelling what this run submitted")
        outcome.interrupted = exc
        target.cancel("INTERRUPTED")

    def step(work: Callable[[], None]) -> None:
        if target.handles_signals:
            work()
        else:
            with interruptible(interrupted):
                work()

    step(target.submit)
    if outcome.interrupted is None and not target.waits:
        return outcome
    if outcome.interrupted is None:
        step(target.wait)
    target.collect()
    outcome.rows = target.rows()
    outcome.collected = True
    target.finish()
    return outcome


def target_class(name: str) -> Type[Target]:
    """The target called `name` (see target_name), imported only when used."""
    if name == SLURM:
        from .slurm import SlurmTarget

        return SlurmTarget
    if name == KUBERNETES:
        from .k8s import K8sTarget

        return K8sTarget
    from .local import LocalTarget

    return LocalTarget
