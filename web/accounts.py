"""Users of the web view: password hashing (werkzeug's scrypt), API tokens, and the
rules a user record must follow. The store keeps only hashes (store.base.UserRecord);
the `pue-monitor user` commands and the log-in page both come through here."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets

from werkzeug.security import check_password_hash, generate_password_hash

from pue_monitor.config.model import USER_ROLES, Config
from pue_monitor.store.base import UserRecord, UserStoreProtocol

HASH_METHOD = "scrypt"  # werkzeug's default parameters (n=2**15, r=8, p=1)
MIN_PASSWORD_LENGTH = 10
MAX_PASSWORD_LENGTH = 1024  # hashing a huge password is work an attacker chooses
USER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")
TOKEN_PREFIX = "pue_"  # tells a pue-monitor token apart in a config or a log scanner
TOKEN_BYTES = 32
# Checked against when the user does not exist, so that a wrong name costs as long as a
# wrong password (no user enumeration by timing).
_DUMMY_HASH = generate_password_hash("not a password of anyone", method=HASH_METHOD)


def hash_password(password: str) -> str:
    """:raises ValueError: too short or too long."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ValueError(f"a password needs at least {MIN_PASSWORD_LENGTH} characters")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise ValueError(f"a password has at most {MAX_PASSWORD_LENGTH} characters")
    return generate_password_hash(password, method=HASH_METHOD)


def check_password(store: UserStoreProtocol, name: str, password: str) -> UserRecord | None:
    """The user, if ``password`` is theirs; None otherwise (as slow either way)."""
    user = store.user(name) if USER_NAME.match(name) else None
    if len(password) > MAX_PASSWORD_LENGTH:
        return None
    ok = check_password_hash(user.password_hash if user else _DUMMY_HASH, password)
    return user if ok and user is not None else None


def password_epoch(user: UserRecord) -> str:
    """Changes when the password does: a session made before a change is no longer valid."""
    return hashlib.sha256(user.password_hash.encode()).hexdigest()[:16]


def new_token() -> tuple[str, str]:
    """(token, its hash): the token is shown once; only the hash is stored."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(TOKEN_BYTES)
    return token, token_hash(token)


def token_hash(token: str) -> str:
    # A random 256-bit token needs no slow hash: sha256 lets the store look it up.
    return hashlib.sha256(token.encode()).hexdigest()


def same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


def check_user(config: Config, name: str, role: str, organisation: str | None) -> None:
    """:raises ValueError: naming the field and value that is wrong."""
    if not USER_NAME.match(name):
        raise ValueError(f"user name {name!r}: letters, digits and . _ @ - (at most 64)")
    if role not in USER_ROLES:
        raise ValueError(f"role {role!r}: one of {', '.join(USER_ROLES)}")
    if role == "operator":
        if organisation is None:
            raise ValueError("an operator needs --org (an organisation of the config)")
        if config.organisation(organisation) is None:
            known = ", ".join(o.id for o in config.organisations) or "none configured"
            raise ValueError(f"organisation {organisation!r} is not in the config ({known})")
    elif organisation is not None:
        raise ValueError(f"role {role} sees every site: --org applies to operators only")
