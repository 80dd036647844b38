"""The API keeps a series until the roll-up closes another block (figures.blockcache):
asked in the minute between a block's boundary and its roll-up, the series lacks that
block, and is not kept so once the roll-up has written it."""

from __future__ import annotations

from pue_monitor.figures.rollup import rollup
from pue_monitor.store.sqlite import Store
from pue_monitor.web import create_app
from tests.web_fixtures import NOW, demo_config, fill

# The fixture's polls cover 09:40-10:00 (NOW, a block boundary): the block 09:45-10:00 of
# que-vo-dc is 150 kW over 100 kW, PUE 1.50, once the roll-up has closed it.
URLS = {"pue": "/api/v1/sites/que-vo-dc/pue?range=day",
        "months": "/api/v1/sites/que-vo-dc/months"}


def test_a_series_asked_before_the_roll_up_closes_its_last_block_is_not_kept(tmp_path):
    store = Store.open(tmp_path / "data")
    fill(store)
    config = demo_config()
    client = create_app(config, store, clock=lambda: NOW, testing=True).test_client()
    before = {name: client.get(url).get_json() for name, url in URLS.items()}
    assert before["pue"]["points"][-1]["pue"] is None  # no block stored yet
    assert before["months"]["months"][10]["pue"] is None  # November
    rollup(store, config, NOW + 120)  # the roll-up, a minute after the block settled
    after = {name: client.get(url).get_json() for name, url in URLS.items()}  # same clock
    last = after["pue"]["points"][-1]
    assert (last["pue"], last["coverage"], last["status"]) == (1.5, 1.0, "ok")
    assert after["months"]["months"][10]["pue"] == 1.5
    store.close()
