"""Configuration: the canonical vocabulary, device profiles and the site model.

Everything here is validated strictly at load time, before any I/O, and every
error names its path and value.
"""

from pue_monitor.config.errors import ConfigError, ConfigIssue
from pue_monitor.config.loader import load_config, load_config_text
from pue_monitor.config.model import Config, Device, Site
from pue_monitor.config.profiles import Profile, load_profiles

__all__ = [
    "Config",
    "ConfigError",
    "ConfigIssue",
    "Device",
    "Profile",
    "Site",
    "load_config",
    "load_config_text",
    "load_profiles",
]
