"""The collector's garbage-collector setting (collectors.gc_tuning): raised while devices
are polled, the process's own back afterwards, whatever the nesting."""

from __future__ import annotations

import asyncio
import gc

import pytest

from pue_monitor.collectors import gc_tuning
from pue_monitor.collectors.gc_tuning import GEN0_THRESHOLD, polling_gc
from pue_monitor.collectors.service import run_pollers


@pytest.fixture(autouse=True)
def _restore_gc():
    before = gc.get_threshold()
    yield
    gc.set_threshold(*before)
    assert gc_tuning._depth == 0


@pytest.mark.parametrize("start, during", [
    ((700, 10, 10), (GEN0_THRESHOLD, 10, 10)),      # CPython's default: raised
    ((2000, 5, 7), (GEN0_THRESHOLD, 5, 7)),         # older generations kept as set
    ((GEN0_THRESHOLD * 2, 10, 10), (GEN0_THRESHOLD * 2, 10, 10)),  # set higher: kept
    ((0, 10, 10), (0, 10, 10)),                     # collection switched off: kept off
])
def test_threshold_while_polling_and_after(start, during):
    gc.set_threshold(*start)
    with polling_gc():
        assert gc.get_threshold() == during
    assert gc.get_threshold() == start


def test_nested_loops_restore_once_the_last_ends():
    gc.set_threshold(700, 10, 10)
    with polling_gc():
        with polling_gc():
            assert gc.get_threshold()[0] == GEN0_THRESHOLD
        assert gc.get_threshold()[0] == GEN0_THRESHOLD  # the outer loop still polls
    assert gc.get_threshold() == (700, 10, 10)


def test_restored_when_the_block_raises():
    gc.set_threshold(700, 10, 10)
    with pytest.raises(RuntimeError), polling_gc():
        raise RuntimeError("a poller failed")
    assert gc.get_threshold() == (700, 10, 10)


class _Client:
    closed = False

    def close(self) -> None:
        self.closed = True


class _Poller:
    """What run_pollers needs of a poller: run(stop), device.id, client."""

    def __init__(self) -> None:
        self.device = type("D", (), {"id": "d1"})()
        self.client = _Client()
        self.seen: tuple[int, int, int] | None = None

    async def run(self, stop: asyncio.Event) -> None:
        self.seen = gc.get_threshold()


def test_run_pollers_polls_with_the_raised_threshold():
    gc.set_threshold(700, 10, 10)
    poller = _Poller()
    asyncio.run(run_pollers([poller], asyncio.Event()))  # type: ignore[list-item]
    assert poller.seen == (GEN0_THRESHOLD, 10, 10)
    assert gc.get_threshold() == (700, 10, 10) and poller.client.closed
