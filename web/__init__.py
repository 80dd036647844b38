"""Web view, JSON API and /metrics: a Flask app factory over the store (web.app).

The factory is imported on first use, so that `pue-monitor report`, which only needs
web.report_render, starts without loading Flask and the live view's modules.
"""

from __future__ import annotations

from typing import Any

__all__ = ["create_app"]


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from pue_monitor.web.app import create_app
        return create_app
    raise AttributeError(f"module 'web' has no attribute {name!r}")
