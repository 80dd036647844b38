"""The open-file limit raised for the devices configured (collectors.fd_limit)."""

from __future__ import annotations

import pytest

from pue_monitor.collectors.fd_limit import fds_needed, raise_fd_limit

INFINITY = -1  # resource.RLIM_INFINITY on Linux


@pytest.mark.parametrize("fast, others, needed", [
    (0, 0, 256), (5000, 0, 10256), (1000, 24, 2280), (0, 64, 320),
])
def test_descriptors_needed(fast, others, needed):
    assert fds_needed(fast, others) == needed


@pytest.mark.parametrize("limits, needed, soft_after, set_to, warns", [
    ((1024, 524288), 10256, 524288, (524288, 524288), False),  # raised to the hard limit
    ((20000, 20000), 10256, 20000, None, False),  # already enough: left alone
    ((1024, 4096), 10256, 4096, (4096, 4096), True),  # raised, still short: told
    ((1024, INFINITY), 10256, 10256, (10256, INFINITY), False),  # no hard limit
    ((INFINITY, INFINITY), 10256, INFINITY, None, False),  # no limit at all
    ((65536, 65536), 300, 65536, None, False),  # never lowered
])
def test_soft_limit_raised(limits, needed, soft_after, set_to, warns):
    calls = []
    soft, warning = raise_fd_limit(needed, lambda: limits, calls.append)
    assert soft == soft_after
    assert calls == ([] if set_to is None else [set_to])
    assert (warning is not None) == warns
    if warns:
        assert str(needed) in warning and "hard limit is 4096" in warning


def test_refused_raise_is_told():
    def refuse(_limits):
        raise ValueError("not allowed")
    soft, warning = raise_fd_limit(5000, lambda: (1024, 8192), refuse)
    assert soft == 1024
    assert warning is not None and "5000" in warning and "stays 1024" in warning
