"""The store's users, API tokens and settings fingerprints answer the same on both
backends (store.accounts, store.pg_accounts): hashes in, the same records out."""

from __future__ import annotations

import pytest

from pue_monitor.store.base import UserRecord

ADMIN = UserRecord("admin", "admin", None, "hash-a", 100.0)
OPERATOR = UserRecord("op-b", "operator", "org-b", "hash-b", 200.0)


@pytest.fixture
def store(store_factory):
    store = store_factory.open()
    yield store
    store.close()


def test_users_and_tokens_round_trip(store):
    store.add_user(OPERATOR)
    store.add_user(ADMIN)
    with pytest.raises(ValueError, match="op-b"):
        store.add_user(OPERATOR)
    assert store.users() == [ADMIN, OPERATOR]  # by name
    assert store.user("op-b") == OPERATOR
    assert store.user("nobody") is None
    assert store.set_password_hash("op-b", "hash-b2") is True
    assert store.set_password_hash("nobody", "x") is False
    assert store.user("op-b").password_hash == "hash-b2"

    store.add_token("op-b", "t1", "grafana", 300.0)
    store.add_token("op-b", "t2", "script", 301.0)
    with pytest.raises(ValueError, match="nobody"):
        store.add_token("nobody", "t3", "x", 302.0)
    assert store.token_user("t1").name == "op-b"
    assert store.token_user("t3") is None
    assert store.revoke_tokens("op-b") == 2
    assert store.token_user("t2") is None

    store.add_token("op-b", "t4", "again", 303.0)
    assert store.remove_user("op-b") is True
    assert store.remove_user("op-b") is False
    assert store.token_user("t4") is None  # a removed user's tokens go with them
    assert store.users() == [ADMIN]


def test_replace_settings_drops_the_blocks_and_their_days(store):
    # Two blocks of each meter on day 0 (offset 0): a's go, b's stay.
    store.write_interval_energy([("a", 0.0, 900.0, 1.0, 900.0, "counter"),
                                 ("a", 900.0, 1800.0, 2.0, 900.0, "counter"),
                                 ("b", 0.0, 900.0, 4.0, 900.0, "counter")])
    store.replace_settings({"a": "fp1", "b": "fp2"}, drop_blocks=False)
    assert store.settings_fingerprints() == {"a": "fp1", "b": "fp2"}
    assert store.block_counts(["a", "b"], 0.0, 86400.0) == {"a": 2, "b": 1}

    store.replace_settings({"a": "fp3"})
    assert store.settings_fingerprints() == {"a": "fp3", "b": "fp2"}
    assert store.block_counts(["a", "b"], 0.0, 86400.0) == {"b": 1}
    assert [r[:3] for r in store.day_rows(["a", "b"], 0.0, 86400.0)] == [("b", 0, 1)]
    totals = store.block_totals(["a", "b"], 0.0, 86400.0, by_day=True)
    assert {k: t.energy_kwh for k, t in totals.items()} == {("b", 0): 4.0}


def test_sessions_open_expire_and_end(store):
    store.add_user(OPERATOR)
    store.add_user(ADMIN)
    with pytest.raises(ValueError, match="nobody"):
        store.add_session("s0", "nobody", 100.0, 200.0)
    store.add_session("s1", "op-b", 100.0, 1000.0)
    store.add_session("s2", "op-b", 110.0, 500.0)
    store.add_session("s3", "admin", 120.0, 1000.0)
    assert store.session_user("s1", 999.0) == OPERATOR
    assert store.session_user("s2", 500.0) is None  # expired at 500
    assert store.session_user("nope", 200.0) is None
    assert store.end_sessions(session_hash="s1") == 1  # log-out: this session only
    assert store.session_user("s1", 200.0) is None
    assert store.session_user("s3", 200.0) == ADMIN
    assert store.end_sessions(before=600.0) == 1  # s2, expired
    store.add_session("s4", "op-b", 130.0, 1000.0)
    assert store.remove_user("op-b") is True  # a removed user's sessions end with them
    assert store.session_user("s4", 200.0) is None
    assert store.end_sessions(name="admin") == 1
    assert store.session_user("s3", 200.0) is None


def test_events_are_kept_per_site_newest_first_with_the_latest_state(store):
    from pue_monitor.store.base import SiteEvent
    down = SiteEvent("a", 100.0, "device", "a-ups", "down", None, "timeout")
    up = SiteEvent("a", 160.0, "device", "a-ups", "up")
    over = SiteEvent("a", 130.0, "pue", "24h", "over", 1.52)
    other = SiteEvent("b", 120.0, "device", "b-pdu", "degraded", None, "decode")
    store.record_events([down, over, other])
    store.record_events([up])
    store.record_events([SiteEvent("a", 130.0, "pue", "24h", "over", 1.53)])  # replaces
    over = SiteEvent("a", 130.0, "pue", "24h", "over", 1.53)
    assert store.events("a", 0.0, 1000.0) == [up, over, down]
    assert store.events("a", 100.0, 160.0) == [over, down]  # half-open
    assert store.events("a", 0.0, 1000.0, limit=1) == [up]
    assert store.events("c", 0.0, 1000.0) == []
    assert store.latest_events() == {("a", "device", "a-ups"): up, ("a", "pue", "24h"): over,
                                     ("b", "device", "b-pdu"): other}


def test_replace_settings_since_drops_only_the_later_blocks(store):
    # A setting changed from 900 s (settings with history): a's blocks from 900 s go, its
    # block before stays, and so does the day's sum of it; b is only recorded.
    store.write_interval_energy([("a", 0.0, 900.0, 1.0, 900.0, "counter"),
                                 ("a", 900.0, 1800.0, 2.0, 900.0, "counter"),
                                 ("a", 1800.0, 2700.0, 8.0, 900.0, "counter"),
                                 ("b", 0.0, 900.0, 4.0, 900.0, "counter")])
    store.replace_settings({"a": "t1", "b": "t2"}, since={"a": 900.0})
    assert store.settings_fingerprints() == {"a": "t1", "b": "t2"}
    assert store.block_counts(["a", "b"], 0.0, 86400.0) == {"a": 1, "b": 1}
    assert store.last_interval_end("a") == 900.0
    totals = store.block_totals(["a", "b"], 0.0, 86400.0, by_day=True)
    assert {k: t.energy_kwh for k, t in totals.items()} == {("a", 0): 1.0, ("b", 0): 4.0}
