"""Persistence shared by collectors (writers) and the web view (readers).

Collectors and web never import each other: they meet here.
"""

from pue_monitor.store.model import ErrorKind, PollResult, Quality, Reading, labels_key
from pue_monitor.store.sqlite import Store

__all__ = ["ErrorKind", "PollResult", "Quality", "Reading", "Store", "labels_key"]
