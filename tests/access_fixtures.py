"""The demo province with log-in on, and one user per role (see tests/test_access.py).

Organisations (config/demo.yaml): bn-dost runs bn-provincial; kcn-operators runs
que-vo-dc and yen-phong-dc.
"""

from __future__ import annotations

from pue_monitor.config.model import Config, Web
from pue_monitor.store.base import UserRecord
from pue_monitor.web.accounts import hash_password
from tests.web_fixtures import NOW, demo_config

PASSWORD = "correct horse battery"
ALL = ["bn-provincial", "que-vo-dc", "yen-phong-dc"]
# user -> (role, organisation, the sites they see)
USERS = {
    "op-a": ("operator", "bn-dost", ["bn-provincial"]),
    "op-b": ("operator", "kcn-operators", ["que-vo-dc", "yen-phong-dc"]),
    "aud": ("auditor", None, ALL),
    "adm": ("admin", None, ALL),
}


def login_config(**web: object) -> Config:
    return demo_config().model_copy(update={"web": Web(login=True, **web)})


def add_users(store) -> None:
    digest = hash_password(PASSWORD)  # one scrypt hash for all: the tests stay fast
    for name, (role, org, _) in USERS.items():
        store.add_user(UserRecord(name, role, org, digest, NOW))
