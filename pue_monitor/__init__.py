"""The composition root: command line and process wiring (collectors + web + store)."""

__version__ = "0.1.0"
