"""Signals during a run: remembered, raised only where allowed, never cutting a deferred block short."""

from __future__ import annotations

import os
import signal

import pytest

from ansible_collections.rocm.madengine.plugins.module_utils import interrupts
from ansible_collections.rocm.madengine.plugins.module_utils.interrupts import Interrupted


def send(signum: int) -> None:
    os.kill(os.getpid(), signum)


def test_guarded_remembers_a_signal_and_restores_the_handlers():
    before = [signal.getsignal(s) for s in interrupts.HANDLED]
    with interrupts.guarded():
        send(signal.SIGTERM)
        taken = interrupts.take()
        assert interrupts.take() is None  # taken once
    assert isinstance(taken, Interrupted)
    assert (taken.name, taken.exit_code) == ("SIGTERM", 143)
    assert [signal.getsignal(s) for s in interrupts.HANDLED] == before


@pytest.mark.parametrize("signum, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143), (signal.SIGHUP, 129)])
def test_allowed_raises_at_once(signum, code):
    with interrupts.guarded():
        with pytest.raises(Interrupted) as caught:
            with interrupts.allowed():
                send(signum)
                pytest.fail("the signal did not interrupt the block")
    assert caught.value.exit_code == code


def test_a_remembered_signal_is_raised_on_entering_allowed():
    with interrupts.guarded():
        send(signal.SIGHUP)
        with pytest.raises(Interrupted):
            with interrupts.allowed():
                pytest.fail("entered the block although a signal was waiting")


def test_deferred_runs_to_its_end_then_raises():
    steps = []
    with interrupts.guarded():
        with pytest.raises(Interrupted):
            with interrupts.allowed():
                with interrupts.deferred():
                    send(signal.SIGTERM)
                    steps.append("after the signal")
    assert steps == ["after the signal"]


def test_deferred_without_raising_leaves_the_signal_for_take():
    with interrupts.guarded():
        with interrupts.allowed():
            with interrupts.deferred(raise_pending=False):
                send(signal.SIGINT)
        taken = interrupts.take()
    assert taken is not None and taken.name == "SIGINT"


def test_interrupted_is_not_an_exception_that_generic_handlers_swallow():
    with pytest.raises(Interrupted):
        try:
            raise Interrupted(signal.SIGTERM)
        except Exception:  # what core code does around engine calls
            pytest.fail("swallowed")


def test_nested_guarded_keeps_the_outer_handlers_until_the_outer_block_ends():
    with interrupts.guarded():
        inner_handler = signal.getsignal(signal.SIGTERM)
        with interrupts.guarded():
            pass
        assert signal.getsignal(signal.SIGTERM) is inner_handler
        send(signal.SIGTERM)
        assert interrupts.take() is not None
