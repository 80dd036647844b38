"""Web view, JSON API and /metrics: a Flask app factory over the store (web.app).

The factory is imported on first use, so that `pue-monitor report`, which only needs
web.report_render, starts without loading Flask and the live view's modules.
"""

from __future__ import annotations

from typing import Any

__all__ = ["create_app", "warm"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from pue_monitor.web import app
        return getattr(app, name)
    raise AttributeError(f"module 'web' has no attribute {name!r}")
