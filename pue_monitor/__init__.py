"""The composition root: command line and process wiring. The only package that knows
every other (collectors, store and its SQLite backend, figures, exchange, web) and the
terminal (progress of long work)."""

__version__ = "0.1.0"
