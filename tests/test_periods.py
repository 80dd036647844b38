"""Report periods: parsing, and block-based period PUE equal to the exact computation."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from pue_monitor.config.metrics import JOULES_PER_KWH
from pue_monitor.pue.kpi import interval_pue
from pue_monitor.pue.periods import parse_period
from pue_monitor.store.model import PollResult, Reading
from pue_monitor.figures.periods import period_result
from pue_monitor.figures.service import meter_inputs
from pue_monitor.store.base import StoreProtocol
from tests.web_fixtures import demo_config

TZ = "Asia/Ho_Chi_Minh"


def local(*args: int) -> float:
    return datetime(*args, tzinfo=ZoneInfo(TZ)).timestamp()


AT = local(2026, 11, 25, 10, 7, 30)

# (text, expected start, expected end), all local time in Hà Nội (UTC+7)
PERIODS = [
    ("2025", local(2025, 1, 1), local(2026, 1, 1)),
    ("2025-Q1", local(2025, 1, 1), local(2025, 4, 1)),
    ("2025-q4", local(2025, 10, 1), local(2026, 1, 1)),
    ("2025-02", local(2025, 2, 1), local(2025, 3, 1)),
    ("2024-02", local(2024, 2, 1), local(2024, 3, 1)),
    ("2025-12", local(2025, 12, 1), local(2026, 1, 1)),
    ("2025-03-14", local(2025, 3, 14), local(2025, 3, 15)),
    ("12m", local(2025, 11, 25, 10, 0), local(2026, 11, 25, 10, 0)),  # to the last block
    ("2025-01-01..2025-01-08", local(2025, 1, 1), local(2025, 1, 8)),
    ("2025-01-01T06:00..2025-01-01T18:30", local(2025, 1, 1, 6), local(2025, 1, 1, 18, 30)),
    ("2025-01-01T00:00Z..2025-01-02", local(2025, 1, 1, 7), local(2025, 1, 2)),
]


@pytest.mark.parametrize(("text", "start", "end"), PERIODS, ids=[p[0] for p in PERIODS])
def test_parse_period(text, start, end):
    assert parse_period(text, TZ, AT) == (start, end)


@pytest.mark.parametrize("text", ["2025-13", "2025-Q5", "last year", "2025-02-02..2025-02-01",
                                  "2025-01-01..tomorrow"])
def test_bad_periods_are_refused_clearly(text):
    with pytest.raises(ValueError, match=r"period|month|date"):
        parse_period(text, TZ, AT)


T0 = local(2026, 3, 2, 9, 0)
STEP = 5.0  # demo devices poll every 5 s: power gaps over 15 s are not bridged


def scenario_store(store_factory) -> StoreProtocol:
    """Four hours of bn-provincial with a counter reset, a power gap and a chiller gap."""
    store = store_factory.open()
    polls = []
    kwh = {"prov-incomer": 52_000.0, "prov-chiller": 9_000.0}
    last_t = None
    for i in range(int(4 * 3600 / STEP) + 1):
        t = T0 + i * STEP
        dt = 0.0 if last_t is None else t - last_t
        last_t = t
        # Steps every 97 polls, with 1 W of alternating ripple: a steady value repeated
        # for 30 polls while the site moves is stuck power (method 3, rule 6).
        ripple = 1.0 if i % 2 else -1.0
        incomer_w = 150_000.0 + 5_000.0 * ((i // 97) % 5) + ripple
        kwh["prov-incomer"] += incomer_w * dt / JOULES_PER_KWH
        kwh["prov-chiller"] += 30_000.0 * dt / JOULES_PER_KWH
        if t == T0 + 2 * 3600 + 11 * 60 + 10:  # the incomer's register is reset
            kwh["prov-incomer"] = 0.0
        rows = {
            "prov-incomer": [("active_power_w", incomer_w),
                             ("active_energy_kwh", kwh["prov-incomer"])],
            "prov-ups-a": [("active_power_w", 52_000.0 + 10.0 * (i % 7))],
            "prov-chiller": [("active_energy_kwh", kwh["prov-chiller"])],
        }
        # UPS B goes silent for 23 minutes across two blocks: not bridged.
        if not T0 + 3720 < t < T0 + 3720 + 23 * 60:
            # 48 kW: each trapezoid between alternating readings is 48 kW exactly.
            rows["prov-ups-b"] = [("active_power_w", 48_000.0 + 10.0 * ripple)]
        # The chiller meter is silent for 40 minutes: its counter bridges that exactly.
        if T0 + 5400 < t < T0 + 7800:
            rows.pop("prov-chiller")
        for device, values in rows.items():
            polls.append(PollResult(device, "bn-provincial", t, 0.01, tuple(
                Reading(t, device, metric, value) for metric, value in values)))
    store.write_polls(polls)
    return store


@pytest.mark.parametrize(("start", "end"), [
    (T0 + 7 * 60 + 3, T0 + 3 * 3600 + 52 * 60),  # ragged ends, gap, reset inside
    (T0, T0 + 4 * 3600),  # aligned
    (T0 + 3600, T0 + 3600 + 60 * 60),  # the gap's hour only
    (T0 + 61, T0 + 600),  # inside one block
])
def test_blocks_give_the_exact_figure(store_factory, start, end):
    config = demo_config()
    site = config.site("bn-provincial")
    store = scenario_store(store_factory)
    now = T0 + 5 * 3600
    by_blocks = period_result(store, config, site, start, end, now)
    exact = interval_pue(site.id, meter_inputs(store, config, site, start, end), start, end,
                         threshold=site.pue_threshold, operator=site.threshold_operator,
                         coverage_threshold=site.coverage_threshold)
    assert by_blocks.coverage == pytest.approx(exact.coverage, abs=1e-9)
    assert by_blocks.facility_energy_kwh == pytest.approx(exact.facility_energy_kwh, rel=1e-9)
    assert by_blocks.it_energy_kwh == pytest.approx(exact.it_energy_kwh, rel=1e-9)
    assert by_blocks.status == exact.status
    for a, b in zip(by_blocks.meters, exact.meters):
        assert (a.device, a.role) == (b.device, b.role)
        assert a.energy_kwh == pytest.approx(b.energy_kwh, rel=1e-9), a.device
        assert a.resets == b.resets, a.device
        assert (a.cross_check is None) == (b.cross_check is None), a.device
        if a.cross_check is not None:
            assert a.cross_check[:2] == pytest.approx(b.cross_check[:2], rel=1e-9)
    store.close()


def test_the_gap_is_left_out_of_both_sides(store_factory):
    config = demo_config()
    site = config.site("bn-provincial")
    store = scenario_store(store_factory)
    result = period_result(store, config, site, T0, T0 + 4 * 3600, T0 + 5 * 3600)
    # UPS B's last reading before the gap is at +3720 s, the next at +5100 s: 23 minutes
    # that count for neither side.
    covered = 4 * 3600 - 23 * 60
    assert result.coverage == pytest.approx(covered / (4 * 3600), abs=1e-12)
    ups_b = next(m for m in result.meters if m.device == "prov-ups-b")
    assert ups_b.energy_kwh == pytest.approx(48 * covered / 3600, rel=1e-12)  # 173.6 kWh
    incomer = next(m for m in result.meters if m.device == "prov-incomer")
    assert incomer.resets == 1  # the register restarted at 11:11:10
    # The incomer reports power too: counter and power agree (both from the same watts,
    # the power stepping every 97 polls is integrated by trapezoids across each step).
    counter_kwh, power_kwh, share = incomer.cross_check
    # Over the whole 4 h (its own time, not the common time of the ratio): the mean draw
    # is 160 kW (the five steps 150..170 kW in turn), 640 kWh less the 0.22 kWh of the
    # 5 s in which the register was reset.
    assert counter_kwh == pytest.approx(640, abs=1.0) and power_kwh == pytest.approx(640, abs=1)
    assert share < 0.001
    chiller = next(m for m in result.meters if m.device == "prov-chiller")
    # A sub-meter counts over the same time as the ratio: its counter bridges its own
    # 40-minute silence, but UPS B's 23 minutes are left out for it too (30 kW x 217 min).
    assert chiller.energy_kwh == pytest.approx(30 * (4 * 60 - 23) / 60, rel=1e-9)
    assert chiller.common_s == pytest.approx(covered, abs=1e-6)
    assert chiller.covered_s == pytest.approx(4 * 3600, abs=1e-6)  # what it measured itself
    store.close()


def test_segments_equal_separate_periods_and_add_up(store_factory):
    """One pass over the blocks for several segments gives what each would on its own."""
    from pue_monitor.figures.periods import segmented_results
    config = demo_config()
    site = config.site("bn-provincial")
    store = scenario_store(store_factory)
    now = T0 + 5 * 3600
    bounds = [T0 + 7 * 60 + 3, T0 + 3600, T0 + 5400, T0 + 3 * 3600 + 52 * 60]
    segments, whole = segmented_results(store, config, site, bounds, now, ["a", "b", "c", "all"])
    for got, a, b in zip(segments, bounds, bounds[1:]):
        alone = period_result(store, config, site, a, b, now)
        assert got.coverage == pytest.approx(alone.coverage, abs=1e-12)
        assert got.facility_energy_kwh == pytest.approx(alone.facility_energy_kwh, rel=1e-9)
        assert got.it_energy_kwh == pytest.approx(alone.it_energy_kwh, rel=1e-9)
    assert whole.facility_energy_kwh == pytest.approx(
        sum(g.facility_energy_kwh for g in segments), rel=1e-9)
    assert whole.window == "all" and [g.window for g in segments] == ["a", "b", "c"]
    store.close()


@pytest.mark.parametrize(("profile", "width"), [
    ("apc_ups", 2 ** 32 * 0.01),  # upsAdvOutputEnergy, hundredths of kWh, Unsigned32
    ("ups_mib", None),  # RFC 1628 has no energy counter
])
def test_profiles_declare_where_their_energy_counter_wraps(profile, width):
    # The store unwinds a wrap of such a register instead of reading it as a reset.
    assert demo_config().profiles[profile].counter_width("active_energy_kwh") == width


# (rolled up until, hours after T0), window start and end (after T0): the live windows
# read the blocks the roll-up closed and raw readings only after them.
RECENT = [
    (2.5, 7 * 60 + 3, 3 * 3600 + 52 * 60),  # frontier inside, ragged start and end
    (0.0, 0.0, 4 * 3600),  # nothing rolled up: all raw
    (4.0, 600.0, 4 * 3600),  # rolled up to the end: the tail is empty
    (1.25, 3600.0, 3 * 3600 + 7.5),  # frontier inside UPS B's gap
]


def _roll_up_to(store, config, site, start, frontier):
    from pue_monitor.figures.rollup import rollup_range
    for device in site.devices:
        if frontier > start and device.role.value not in ("monitor", "water"):
            rollup_range(store, config, site, device, start, frontier)


def _same_as_exact(got, store, config, site, start, end):
    exact = interval_pue(site.id, meter_inputs(store, config, site, start, end), start, end,
                         threshold=site.pue_threshold, operator=site.threshold_operator,
                         coverage_threshold=site.coverage_threshold)
    assert got.window == "w"
    assert got.coverage == pytest.approx(exact.coverage, abs=1e-9)
    assert got.facility_energy_kwh == pytest.approx(exact.facility_energy_kwh, rel=1e-9)
    assert got.it_energy_kwh == pytest.approx(exact.it_energy_kwh, rel=1e-9)
    assert got.status == exact.status


@pytest.mark.parametrize("kept", [False, True], ids=["computed", "kept"])
@pytest.mark.parametrize(("rolled_h", "start", "end"), RECENT)
def test_recent_windows_from_blocks_and_raw_tail_equal_the_exact_figure(
        store_factory, rolled_h, start, end, kept):
    # kept: the whole blocks' parts kept in a BlockCache (the web view's), asked twice so
    # the second answer comes from what the first kept.
    from pue_monitor.figures.blockcache import BlockCache
    from pue_monitor.figures.periods import recent_results, rolled_up_until
    config = demo_config()
    site = config.site("bn-provincial")
    store = scenario_store(store_factory)
    frontier = T0 + rolled_h * 3600
    _roll_up_to(store, config, site, T0, frontier)
    assert rolled_up_until(store, site) == frontier
    start, end = T0 + start, T0 + end
    cache = BlockCache() if kept else None
    for _ in range(2 if kept else 1):
        got = recent_results(store, config, site, {"w": (start, end)}, cache)["w"]
        _same_as_exact(got, store, config, site, start, end)
    store.close()


def test_kept_recent_window_follows_a_block_the_roll_up_closes_after(store_factory):
    # The kept parts end where the roll-up stood: once it closes another block they are
    # not reused for the longer run of blocks (the energy of that block would be lost).
    from pue_monitor.figures.blockcache import BlockCache
    from pue_monitor.figures.periods import recent_results
    config = demo_config()
    site = config.site("bn-provincial")
    store = scenario_store(store_factory)
    start, end, cache = T0 + 7 * 60 + 3, T0 + 3 * 3600 + 52 * 60, BlockCache()
    for rolled_h in (2.0, 2.25, 2.5):
        _roll_up_to(store, config, site, T0, T0 + rolled_h * 3600)
        got = recent_results(store, config, site, {"w": (start, end)}, cache)["w"]
        _same_as_exact(got, store, config, site, start, end)
    store.close()


# (seconds after it was kept, asked again): kept MAX_AGE_S at most, then computed again.
KEPT_AGES = [(0.0, 1), (59.9, 1), (60.0, 2), (3600.0, 2)]


@pytest.mark.parametrize(("age", "computed"), KEPT_AGES)
def test_block_cache_keeps_a_value_max_age_seconds(age, computed):
    from pue_monitor.figures.blockcache import BlockCache
    now = [100.0]
    cache, calls = BlockCache(max_age_s=60.0, clock=lambda: now[0]), []
    assert cache.get(("k",), lambda: calls.append(1) or "v") == "v"
    now[0] += age
    assert cache.get(("k",), lambda: calls.append(1) or "v") == "v"
    assert len(calls) == computed
