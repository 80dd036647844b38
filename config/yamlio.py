"""Reading YAML: libyaml's parser where PyYAML has it (about ten times faster: a report
loads the configuration and every profile before it starts), else the pure-Python one.
Both build the same safe types."""

from __future__ import annotations

from typing import Any

import yaml

SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load_yaml(text: str) -> Any:
    """Like yaml.safe_load; raises yaml.YAMLError (with the line and column) on bad YAML."""
    return yaml.load(text, Loader=SAFE_LOADER)  # noqa: S506 - a safe loader
