"""SIGINT, SIGTERM and SIGHUP during a run or build: one exception, raised only where work may be cut short.

Inside `guarded()` a signal is only remembered; inside `allowed()` (a model's container, an image build) it
raises Interrupted at once; inside `deferred()` (a file write, a container's removal) it waits again until the
block ends. The caller picks the remembered signal up with `take()` and writes the rows that say so."""

from __future__ import annotations

import contextlib
import signal
import threading
from typing import Any, Iterator, List, Optional

HANDLED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
# A container gets this long between SIGTERM and SIGKILL when a run is interrupted.
STOP_GRACE = 10


class Interrupted(BaseException):
    """A handled signal arrived. A BaseException, like KeyboardInterrupt: `except Exception` must not swallow it."""

    def __init__(self, signum: int) -> None:
        self.signum = int(signum)
        super().__init__(self.name)

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name

    @property
    def exit_code(self) -> int:
        """128 + the signal number, as a shell reports a process ended by that signal."""
        return 128 + self.signum


class _State:
    active = False  # handlers installed (main thread only)
    deferring = 0
    pending: Optional[int] = None


def _handler(signum: int, _frame: Any) -> None:
    if _State.deferring:
        if _State.pending is None:
            _State.pending = signum
        return
    raise Interrupted(signum)


@contextlib.contextmanager
def guarded() -> Iterator[None]:
    """Handle the signals for the block (main thread only; elsewhere nothing changes): remember them."""
    if _State.active or threading.current_thread() is not threading.main_thread():
        yield
        return
    previous: List[Any] = [signal.signal(sig, _handler) for sig in HANDLED]
    _State.active, _State.deferring, _State.pending = True, 1, None
    try:
        yield
    finally:
        for sig, handler in zip(HANDLED, previous):
            signal.signal(sig, handler)
        _State.active, _State.deferring, _State.pending = False, 0, None


@contextlib.contextmanager
def allowed() -> Iterator[None]:
    """Inside a guarded block: signals raise Interrupted at once (one remembered already, on entry)."""
    if not _State.active:
        yield
        return
    saved, _State.deferring = _State.deferring, 0
    try:
        _raise_pending()
        yield
    finally:
        _State.deferring = saved


@contextlib.contextmanager
def deferred(raise_pending: bool = True) -> Iterator[None]:
    """Inside the block a signal is remembered, so the work runs to its end. When the block ends inside
    `allowed()`, a remembered signal is raised, unless raise_pending=False (then `take()` finds it)."""
    if not _State.active:
        yield
        return
    _State.deferring += 1
    try:
        yield
    finally:
        _State.deferring -= 1
        if raise_pending and not _State.deferring:
            _raise_pending()


def _raise_pending() -> None:
    if _State.pending is not None:
        signum, _State.pending = _State.pending, None
        raise Interrupted(signum)


def take() -> Optional[Interrupted]:
    """The remembered signal as Interrupted (and forget it), or None."""
    if _State.pending is None:
        return None
    signum, _State.pending = _State.pending, None
    return Interrupted(signum)
