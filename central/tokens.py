"""Data centers' ingest tokens: made at random, kept only as a hash, sent by the edge as
``Authorization: Token <token>`` (as the InfluxDB v2 API has it)."""

from __future__ import annotations

import hashlib
import secrets

from pue_monitor.store.base import CentralStoreProtocol, CentralToken

TOKEN_BYTES = 32  # 256 bits of randomness
SCHEME = "Token "


def new_token() -> str:
    return secrets.token_urlsafe(TOKEN_BYTES)


def token_hash(token: str) -> str:
    """SHA-256 is enough for a random 256-bit token (nothing to guess); a password would
    need a slow hash."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def from_header(store: CentralStoreProtocol, header: str) -> CentralToken | None:
    """The live token an ``Authorization`` header carries, or None."""
    if not header.startswith(SCHEME):
        return None
    token = header[len(SCHEME):].strip()
    return store.central_token(token_hash(token)) if token else None
