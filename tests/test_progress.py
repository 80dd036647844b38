"""Progress on a terminal, none elsewhere, at most a few updates a second."""

from __future__ import annotations

import io

import pytest

from pue_monitor.progress import Progress


class FakeStream(io.StringIO):
    def __init__(self, tty: bool) -> None:
        super().__init__()
        self.tty = tty

    def isatty(self) -> bool:
        return self.tty


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


# (updates as (seconds since the previous one, done, total), what the terminal shows)
CASES = [
    ("one update per site, far apart", [(1.0, 1, 3), (1.0, 2, 3), (1.0, 3, 3)],
     "\rreport: 1/3 sites\rreport: 2/3 sites\rreport: 3/3 sites\n"),
    # 0.1 s after the first: under the 0.25 s between updates, left out; the last never is
    ("fast updates are thinned, the last one kept", [(0.0, 1, 4), (0.1, 2, 4), (0.2, 3, 4),
                                                      (0.01, 4, 4)],
     "\rreport: 1/4 sites\rreport: 3/4 sites\rreport: 4/4 sites\n"),
    ("a single site", [(0.0, 1, 1)], "\rreport: 1/1 sites\n"),
]


@pytest.mark.parametrize(("name", "updates", "shown"), CASES, ids=[c[0] for c in CASES])
def test_a_terminal_sees_the_progress(name, updates, shown):
    stream, clock = FakeStream(tty=True), FakeClock()
    progress = Progress("report", "sites", stream, clock)
    for wait, done, total in updates:
        clock.now += wait
        progress(done, total)
    assert stream.getvalue() == shown


def test_no_terminal_sees_nothing():
    stream, clock = FakeStream(tty=False), FakeClock()
    progress = Progress("report", "sites", stream, clock)
    for done in range(1, 11):
        clock.now += 1.0
        progress(done, 10)
    assert stream.getvalue() == ""


def test_report_of_every_site_reports_each_site(tmp_path):
    from pue_monitor.figures.report import build_report
    from pue_monitor.store.sqlite import Store
    from tests.web_fixtures import NOW, demo_config, fill

    config = demo_config()
    store = Store.open(tmp_path)
    calls: list[tuple[int, int]] = []
    try:
        fill(store)
        doc = build_report(store, config, "all", "2026-11-25", NOW, NOW,
                           progress=lambda done, total: calls.append((done, total)))
    finally:
        store.close()
    assert [s["site"] for s in doc["sites"]] == ["bn-provincial", "que-vo-dc", "yen-phong-dc"]
    assert calls == [(1, 3), (2, 3), (3, 3)]  # the demo's three sites, one call after each
