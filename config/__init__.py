"""Configuration: the canonical vocabulary, device profiles and the site model.

Everything here is validated strictly at load time, before any I/O, and every
error names its path and value.
"""

from config.errors import ConfigError, ConfigIssue
from config.loader import load_config, load_config_text
from config.model import Config, Device, Site
from config.profiles import Profile, load_profiles

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
