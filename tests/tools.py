"""External command-line tools that some tests need (promtool, chromium, snmpget, ...)."""

from __future__ import annotations

import os
import shutil

import pytest

REQUIRE_TOOLS_ENV = "PUE_MONITOR_REQUIRE_TOOLS"


def require_tool(name: str) -> str:
    """The path of executable `name`, or skip the calling test when it is not on PATH.

    With PUE_MONITOR_REQUIRE_TOOLS=1 (as in CI) a missing tool fails the test instead, so
    that a test which should run for real cannot pass by skipping.
    """
    path = shutil.which(name)
    if path is not None:
        return path
    message = f"{name!r} is not on PATH; install it with `make tools` (see .ci/install-tools)"
    if os.environ.get(REQUIRE_TOOLS_ENV) == "1":
        pytest.fail(f"{message}. {REQUIRE_TOOLS_ENV}=1 requires it.", pytrace=False)
    pytest.skip(message)
