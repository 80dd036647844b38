"""The `organisations:` and `web:` sections: every mistake with its path and value."""

from __future__ import annotations

import pytest

from pue_monitor.config import ConfigError, load_config_text
from tests.test_config import MINIMAL

ORG = "organisations:\n  - {id: org-a, name: {vi: A, en: A}, sites: %s}\n"

# (extra YAML, expected issues as printed)
BAD = [
    (ORG % "[s1, s9]", ['organisations[0].sites[1]: unknown site "s9"']),
    (ORG % "[s1]" + "  - {id: org-a, name: {vi: B, en: B}, sites: []}\n",
     ['organisations[1].id: duplicate organisation id "org-a" (also organisations[0])']),
    ("organisations:\n  - {id: Org A, name: {vi: A, en: A}}\n",
     ["organisations[0].id: String should match pattern '^[a-z0-9][a-z0-9_-]{0,62}$' "
      "(got 'Org A')"]),
    ("web: {login: no-thanks}\n", ["web.login: Input should be a valid boolean, unable to "
                                   "interpret input (got 'no-thanks')"]),
    ("web: {secret_key: short}\n", ["web.secret_key: secret_key needs at least 32 "
                                    "characters"]),
    ("web: {secure_cookies: maybe}\n", ["web.secure_cookies: Input should be 'auto', 'always' "
                                        "or 'never' (got 'maybe')"]),
    ("web: {scrape: {networks: [10.0.0.0/8, 10.0.0.1/8]}}\n",
     ["web.scrape.networks: networks[1]: '10.0.0.1/8' is not a network such as "
      "10.0.0.0/8 (10.0.0.1/8 has host bits set)"]),
    ("web: {logn: false}\n", ["web.logn: unknown key"]),
]


@pytest.mark.parametrize(("extra", "issues"), BAD)
def test_bad_access_sections(extra, issues):
    with pytest.raises(ConfigError) as caught:
        load_config_text(MINIMAL + extra, env={"COMMUNITY": "c"})
    assert [str(i) for i in caught.value.issues] == issues


def test_good_access_sections():
    config = load_config_text(MINIMAL + ORG % "[s1]" + "web:\n  login: false\n  secret_key: "
                              "${KEY}\n  scrape: {networks: [192.0.2.0/24], token: '${TOK}'}\n",
                              env={"COMMUNITY": "c", "KEY": "k" * 32, "TOK": "t"})
    assert config.organisation("org-a").sites == ["s1"] and config.organisation("x") is None
    assert config.web.login is False and [str(n) for n in config.web.scrape.networks] == [
        "192.0.2.0/24"]
    assert "k" * 32 not in repr(config) and config.web.scrape.token.get_secret_value() == "t"


def test_log_in_is_on_unless_switched_off():
    assert load_config_text(MINIMAL, env={"COMMUNITY": "c"}).web.login is True


def test_the_readme_example_loads_and_shows_the_default_networks():
    import re
    from pathlib import Path

    from pue_monitor.config.model import DEFAULT_SCRAPE_NETWORKS
    text = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    section = text[text.index("## People and access"):text.index("## Prometheus metrics")]
    example = re.findall(r"```yaml\n(.*?)```", section, re.S)[0]
    config = load_config_text(MINIMAL + example.replace("que-vo-dc, yen-phong-dc", "s1"),
                              env={"COMMUNITY": "c", "PUE_WEB_KEY": "k" * 40,
                                   "PUE_SCRAPE_TOKEN": "t"})
    assert [str(n) for n in config.web.scrape.networks] == list(DEFAULT_SCRAPE_NETWORKS)
    assert config.web.login is True and config.organisation("kcn-operators").sites == ["s1"]
