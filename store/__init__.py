"""Persistence shared by collectors (writers) and the web view (readers).

Collectors and web never import each other: they meet here.
"""

from store.model import ErrorKind, PollResult, Quality, Reading, labels_key
from store.sqlite import Store

__all__ = ["ErrorKind", "PollResult", "Quality", "Reading", "Store", "labels_key"]
