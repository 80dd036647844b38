"""The site model: sites -> devices (profile + address + role), validated strictly."""

from __future__ import annotations

from datetime import date, datetime
from ipaddress import IPv4Network, IPv6Network, ip_network
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AwareDatetime, Field, SecretStr, field_validator, model_validator

from pue_monitor.config.datatypes import MAX_UNIT_ID, MODBUS_TCP_PORT
from pue_monitor.config.metrics import MeasurementPoint, Role
from pue_monitor.config.profiles import Profile
from pue_monitor.config.strict import StrictModel
from pue_monitor.pue.periods import DEFAULT_MAX_REPORT_YEARS

ID_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,62}$"
DEFAULT_PUE_THRESHOLD = 1.4  # Bắc Ninh plan: green data centers, PUE not above 1.4
DEFAULT_COVERAGE_THRESHOLD = 0.95
DEFAULT_TIMEZONE = "Asia/Ho_Chi_Minh"
DEFAULT_BALANCE_TOLERANCE = 0.10
DEFAULT_COUNTER_POWER_TOLERANCE = 0.02
# Vietnam's grid emission factor (kg CO2 per kWh, i.e. t CO2/MWh) by year, as the
# Department of Climate Change (Cục Biến đổi khí hậu, MONRE) announced them. Checked
# against secondary sources only, not against the official letters themselves:
# - 2021 0.7221, 2022 0.6766, 2023 0.6592: table "Viet Nam's grid emission factor",
#   "Summarised from the DCC's announcements", in "Viet Nam's 2023 Updated Grid Emission
#   Factor signifies lower electricity emissions" (climatechange.vn, climate_news).
# - 2022 0.6766: announced in the DCC's official letter No. 327/BĐKH-PTCBT (greenup.asia,
#   ?p=1591). Its date, and the number and date of the letters for 2021 and 2023, are not
#   verified.
# - 2024: no DCC figure found. 0.6811 is a research estimate (Hanoi University of Science
#   and Technology with the Ministry of Agriculture and Environment, VietnamPlus, April
#   2025), not an official factor, and is not used here.
# A config's `emission_factors` overrides or extends these; a later year without a value
# uses the latest one known, and says so in the report.
DEFAULT_EMISSION_FACTORS = {2021: 0.7221, 2022: 0.6766, 2023: 0.6592}
# `profile: auto`: an SNMP device identified by its sysObjectID when first polled.
AUTO_PROFILE = "auto"
# Defaults the collectors' clients and `pue-monitor probe` share with the configuration.
SNMP_PORT = 161  # agents listen here (RFC 3417)
DEFAULT_TIMEOUT_S = 2.0  # per request
# A serial line's settings when the configuration names none (see ModbusTarget).
SERIAL_DEFAULT_BAUD = 9600
SERIAL_DEFAULT_PARITY = "E"
SERIAL_DEFAULT_STOPBITS = 1
SERIAL_DEFAULT_BYTESIZE = 8
DEFAULT_BUSY_RETRIES = 3


class _Strict(StrictModel):
    """Unknown keys refused, frozen, no boolean for a number (config.strict)."""


class Text(_Strict):
    """A name shown to users, in Vietnamese and English."""

    vi: str
    en: str


SNMP_AUTH_PROTOCOLS = ("md5", "sha", "sha224", "sha256", "sha384", "sha512")
# aes192/aes256 extend the key as net-snmp does (Blumenthal); aes192c/aes256c as Cisco does.
SNMP_PRIV_PROTOCOLS = ("des", "aes", "aes128", "aes192", "aes256", "aes192c", "aes256c")
USM_MIN_KEY_LENGTH = 8  # RFC 3414 11.2: pass phrases of at least 8 characters


class SnmpTarget(_Strict):
    """Where and how to reach an SNMP agent. Communities and keys are secrets: write them
    as ${VAR}; they never appear in a dump, a repr or a log line."""

    host: str
    port: int = Field(SNMP_PORT, ge=1, le=65535)
    version: Literal["1", "2c", "3"] = "2c"
    community: SecretStr = SecretStr("public")
    # SNMPv3 (USM)
    user: str | None = None
    auth_protocol: Literal[SNMP_AUTH_PROTOCOLS] | None = None  # type: ignore[valid-type]
    auth_key: SecretStr | None = None
    priv_protocol: Literal[SNMP_PRIV_PROTOCOLS] | None = None  # type: ignore[valid-type]
    priv_key: SecretStr | None = None
    context: str = ""

    @field_validator("version", mode="before")
    @classmethod
    def _version(cls, value: object) -> object:
        return str(value) if isinstance(value, int) else value

    @field_validator("auth_protocol", "priv_protocol", mode="before")
    @classmethod
    def _lower(cls, value: object) -> object:
        return value.lower().replace("-", "") if isinstance(value, str) else value

    @model_validator(mode="after")
    def _usm(self) -> SnmpTarget:
        if self.version != "3":
            if self.user or self.auth_protocol or self.priv_protocol:
                raise ValueError("user, auth_protocol and priv_protocol need version 3")
            return self
        if not self.user:
            raise ValueError("SNMPv3 needs a user")
        if (self.auth_protocol is None) != (self.auth_key is None):
            raise ValueError("auth_protocol and auth_key go together")
        if (self.priv_protocol is None) != (self.priv_key is None):
            raise ValueError("priv_protocol and priv_key go together")
        if self.priv_protocol is not None and self.auth_protocol is None:
            raise ValueError("privacy needs authentication (authPriv)")
        for key in (self.auth_key, self.priv_key):
            if key is not None and len(key.get_secret_value()) < USM_MIN_KEY_LENGTH:
                raise ValueError(f"SNMPv3 keys need at least {USM_MIN_KEY_LENGTH} characters")
        return self


class ModbusTarget(_Strict):
    """Where a Modbus device answers: TCP, RTU through a TCP gateway, or a serial line.

    Every device with the same host:port (or serial device) shares one connection, on
    which requests go one at a time, ``frame_gap_s`` apart.
    """

    transport: Literal["tcp", "rtu_over_tcp", "serial"] = "tcp"
    host: str | None = None
    port: int = Field(MODBUS_TCP_PORT, ge=1, le=65535)
    unit: int = Field(1, ge=0, le=MAX_UNIT_ID)
    # Serial line settings (transport serial). Modbus over Serial Line 2.5.1 makes even
    # parity the default; many meters ship with none (then set parity: "N", stopbits: 2).
    device: str | None = None
    baud: int = Field(SERIAL_DEFAULT_BAUD, ge=300, le=921600)
    parity: Literal["N", "E", "O"] = SERIAL_DEFAULT_PARITY
    stopbits: int = Field(SERIAL_DEFAULT_STOPBITS, ge=1, le=2)
    bytesize: int = Field(SERIAL_DEFAULT_BYTESIZE, ge=7, le=8)
    # Silence between an answer and the next request on this connection. Default: none
    # over TCP, 3.5 characters on a serial line; slow gateways may want 0.05 or more.
    frame_gap_s: float | None = Field(None, ge=0, le=5)
    # "Device busy" (exception 6) and "acknowledge" (5) answers are asked again, this often.
    busy_retries: int = Field(DEFAULT_BUSY_RETRIES, ge=0, le=20)

    @model_validator(mode="after")
    def _where(self) -> ModbusTarget:
        if self.transport == "serial":
            if self.device is None or self.host is not None:
                raise ValueError("a serial target needs device (e.g. /dev/ttyUSB0) and no host")
        elif self.host is None or self.device is not None:
            raise ValueError(f"a {self.transport} target needs host and no device")
        return self

    @property
    def connection_key(self) -> tuple:
        """Targets with the same key share one connection (a gateway or an RS-485 bus)."""
        if self.transport == "serial":
            return ("serial", self.device)
        return (self.transport, self.host, self.port)

    @property
    def endpoint(self) -> str:
        if self.transport == "serial":
            return f"modbus+serial://{self.device}?baud={self.baud}&unit={self.unit}"
        scheme = "modbus+rtu" if self.transport == "rtu_over_tcp" else "modbus"
        return f"{scheme}://{self.host}:{self.port}/unit{self.unit}"


# SNMP engines: "fast" (gufo-snmp) and "reference" (pysnmp). Unset means fast wherever
# gufo-snmp can poll the target, the reference elsewhere (logged once per device).
SNMP_ENGINES = ("fast", "reference")


def fast_engine_gap(version: str, context: str) -> str | None:
    """Why the fast engine (gufo-snmp) cannot poll a target of this version and context
    (None: it can). Checked in gufo-snmp 0.13's source and against snmpd."""
    if version == "1":
        return ("SNMPv1: gufo-snmp reads no error index, so a GET with one missing object "
                "loses the whole request")
    if version == "3" and context:
        return "SNMPv3 context name: gufo-snmp sends none"
    return None


class Polling(_Strict):
    """How often and how patiently a device is polled."""

    interval_s: float = Field(10.0, gt=0, le=3600)
    timeout_s: float = Field(DEFAULT_TIMEOUT_S, gt=0, le=60)
    retries: int = Field(1, ge=0, le=10)
    snmp_engine: Literal[SNMP_ENGINES] | None = None  # type: ignore[valid-type]


# Polls one process has in flight at once. Every SNMP answer lands on one socket; more at
# once than its receive buffer holds are dropped by the kernel. 128 pending answers need
# about 0.5 MiB of buffer (collectors/udp_buffer.py), within stock Linux limits after
# its doubling of the asked size; 5,000 devices at 10 s need ~500 polls/s, i.e. only a
# few in flight at a time when each takes milliseconds.
DEFAULT_MAX_IN_FLIGHT = 128
# Poll results kept in memory while the store cannot be written (disk full, read-only):
# a few KB each, so the default holds about 100 MB at most; 20 devices polled every 10 s
# fill it in under three days, 5,000 every 60 s in about 12 minutes.
DEFAULT_STORE_BACKLOG = 20_000
# Worker processes polling the devices (collectors/workers.py): 1 polls in the monitor's
# own process. The top is far past the cores of any single machine.
DEFAULT_WORKERS = 1
MAX_WORKERS = 256


class Collection(_Strict):
    """How much one monitor process asks of its devices at once."""

    max_in_flight: int = Field(DEFAULT_MAX_IN_FLIGHT, ge=1, le=100_000)
    # Poll results held in memory while the store refuses writes (collectors/sink.py).
    store_backlog: int = Field(DEFAULT_STORE_BACKLOG, ge=1, le=10_000_000)
    # Each device at its own phase of the interval (spreads the requests); false polls
    # every device at the same instants, so a site's meters are read together (a few
    # devices, where instantaneous PUE should pair readings of one instant).
    spread: bool = True
    # Worker processes, each polling whole sites and sending its results to the one
    # process that writes the store (collectors/workers.py); 1: no worker processes.
    workers: int = Field(DEFAULT_WORKERS, ge=1, le=MAX_WORKERS)


class Retention(_Strict):
    """How long raw readings are kept. The 15-minute blocks and the day summary, which
    every figure of a closed period is made of, are kept for ever; readings are only
    deleted behind every meter's last closed block (figures/retention.py)."""

    readings_days: int | None = Field(None, ge=1, le=36_500)  # None: for ever


class Replacement(_Strict):
    """A meter replaced at ``at``: its last reading and its successor's first."""

    at: AwareDatetime
    old_final_kwh: float = Field(ge=0)
    new_initial_kwh: float = Field(ge=0)


class SettingsChange(_Strict):
    """Settings of a meter from a date on (issue 11, "settings have history"): each key
    given overrides the device's own (and earlier changes') from ``from`` until a later
    change sets it again; ``null`` returns a setting to its default. ``from`` is a date
    (local midnight in the site's time zone) or an ISO time with its UTC offset, on a
    15-minute boundary (config.history checks it, with the site's zone)."""

    from_: AwareDatetime | date = Field(alias="from")
    role: Role | None = None
    share: float | None = Field(None, gt=0, le=1)
    measurement_point: MeasurementPoint | None = None
    counter_width_kwh: float | None = Field(None, gt=0)
    max_gap_s: float | None = Field(None, gt=0)
    # The poll interval the readings of that time were taken at (the default maximum gap
    # is three of them).
    interval_s: float | None = Field(None, gt=0, le=3600)
    reset_below_fraction: float | None = Field(None, gt=0, lt=1)
    rated_max_w: float | None = Field(None, gt=0)
    stuck_power_polls: int | None = Field(None, ge=2, le=100_000)

    @field_validator("from_", mode="before")
    @classmethod
    def _dated(cls, value: object) -> object:
        # A time without its offset would be read as a date at midnight: refused.
        when = value
        if isinstance(value, str) and len(value) > len("2025-01-01"):
            try:
                when = datetime.fromisoformat(value)
            except ValueError:
                return value  # the schema says what is wrong with it
        if isinstance(when, datetime) and when.tzinfo is None:
            raise ValueError("a time needs its UTC offset (+07:00 or Z); a date alone "
                             "means local midnight")
        return when

    def given(self) -> dict[str, object]:
        """The settings this change writes (``null`` included), by name."""
        return {name: getattr(self, name) for name in HISTORY_SETTINGS
                if name in self.model_fields_set}


# What a `changes:` entry may set (the settings a meter's figures rest on). Address,
# profile and replacements are not among them: another device is another entry, and a
# replacement is dated already (`at:`).
HISTORY_SETTINGS = ("role", "share", "measurement_point", "counter_width_kwh", "max_gap_s",
                    "interval_s", "reset_below_fraction", "rated_max_w", "stuck_power_polls")


class Device(_Strict):
    """One unit: where it is (address), what it is (profile) and what it counts as (role)."""

    id: str = Field(pattern=ID_PATTERN)
    # One name for both languages, or {vi, en} like a site's.
    name: str | Text | None = None
    profile: str
    snmp: SnmpTarget | None = None
    modbus: ModbusTarget | None = None
    role: Role = Role.MONITOR
    measurement_point: MeasurementPoint | None = None
    share: float = Field(1.0, gt=0, le=1)
    polling: Polling | None = None
    # Longest span between two power readings that is still integrated (default: 3 polls).
    max_gap_s: float | None = Field(None, gt=0)
    # The energy register's range, if it wraps (e.g. 99 999 999.9 kWh meters): a decrease is
    # then unwound as a wrap. Without it a decrease is a reset (energy since = new value).
    counter_width_kwh: float | None = Field(None, gt=0)
    # Meter swaps: the old meter's final and the new meter's first reading, so the energy
    # across the swap is neither lost nor counted twice.
    replacements: list[Replacement] = Field(default_factory=list)
    # Data-quality settings of method 3 (README, "How PUE is computed"); each overrides the
    # profile's, which overrides the method's default. See QUALITY_SETTINGS.
    reset_below_fraction: float | None = Field(None, gt=0, lt=1)
    rated_max_w: float | None = Field(None, gt=0)
    stuck_power_polls: int | None = Field(None, ge=2, le=100_000)
    # Settings that changed over time, in date order (SettingsChange, config.history):
    # the fields above hold until the first change.
    changes: list[SettingsChange] = Field(default_factory=list)

    @model_validator(mode="after")
    def _one_target(self) -> Device:
        if (self.snmp is None) == (self.modbus is None):
            raise ValueError("give exactly one of snmp or modbus")
        return self

    # A validator of its own: a device known from an edge's definition (no address,
    # central.sitedef) replaces the address check, never this one.
    @model_validator(mode="after")
    def _it_point(self) -> Device:
        if self.role == Role.IT and self.measurement_point is None:
            raise ValueError("an it meter needs measurement_point "
                             "(ups_output, pdu_output or it_input)")
        if self.role != Role.IT and self.measurement_point is not None:
            raise ValueError("measurement_point applies only to role it")
        return self

    @property
    def protocol(self) -> str:
        return "snmp" if self.snmp is not None else "modbus"

    @property
    def endpoint(self) -> str:
        if self.modbus is not None:
            return self.modbus.endpoint
        assert self.snmp is not None
        return f"snmp://{self.snmp.host}:{self.snmp.port}"

    @property
    def display_name(self) -> dict[str, str] | None:
        """{vi, en}: the configured name in each language (one name serves both)."""
        if self.name is None:
            return None
        if isinstance(self.name, Text):
            return {"vi": self.name.vi, "en": self.name.en}
        return {"vi": self.name, "en": self.name}

    @property
    def plain_name(self) -> str | None:
        """One string (reports' CSV, the status document's ``name``): the Vietnamese
        name of a bilingual one."""
        names = self.display_name
        return None if names is None else names["vi"]


# Settings a device may give, else its profile, else the method's default (None here).
QUALITY_SETTINGS = ("reset_below_fraction", "rated_max_w", "stuck_power_polls")


def quality_settings(device: Device, profile: Profile | None) -> dict[str, float | int | None]:
    """The device's data-quality settings: its own, else its profile's, else None."""
    return {name: getattr(device, name) if getattr(device, name) is not None
            else getattr(profile, name, None) for name in QUALITY_SETTINGS}


class Site(_Strict):
    """One data center: its devices and its compliance rule."""

    id: str = Field(pattern=ID_PATTERN)
    name: Text
    kind: Literal["provincial", "attracted"] = "attracted"
    timezone: str = DEFAULT_TIMEZONE
    pue_threshold: float = Field(DEFAULT_PUE_THRESHOLD, ge=1.0, le=5.0)
    # 94/KH-UBND says "không vượt quá 1,4" (<=); 912/QĐ-BKHCN writes "dưới 1,4" (<).
    threshold_operator: Literal["<=", "<"] = "<="
    coverage_threshold: float = Field(DEFAULT_COVERAGE_THRESHOLD, gt=0, le=1)
    # E_DC against E_IT + sub-meters: an unexplained share beyond this is flagged.
    balance_tolerance: float = Field(DEFAULT_BALANCE_TOLERANCE, gt=0, le=1)
    # Counter against integrated power of the same meter: a larger gap is flagged.
    counter_power_tolerance: float = Field(DEFAULT_COUNTER_POWER_TOLERANCE, gt=0, le=1)
    polling: Polling | None = None
    devices: list[Device] = Field(min_length=1)

    @field_validator("timezone")
    @classmethod
    def _tz(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}") from None
        return value


class SiteSimulation(_Strict):
    """Physics of one simulated data center (used only by `pue-monitor simulate`)."""

    it_load_kw: float = Field(300.0, gt=0)
    daily_swing: float = Field(0.12, ge=0, lt=1)  # +/- share of the mean over a day
    weekend_dip: float = Field(0.05, ge=0, lt=1)
    ups_rating_kw: float = Field(250.0, gt=0)  # per UPS unit
    cooling_cop: float = Field(4.5, gt=0)  # chiller plant COP at 25 degC outdoor
    cop_slope_per_c: float = Field(0.08, ge=0)  # COP lost per degC above 25
    fans_kw: float = Field(10.0, ge=0)  # CRAH fans and pumps, always on
    lighting_kw: float = Field(5.0, ge=0)
    distribution_loss: float = Field(0.01, ge=0, lt=0.2)  # transformers, switchgear, cables
    incomers: list[str]  # facility meters sharing the total facility power
    ups: list[str] = Field(default_factory=list)  # UPS units sharing the IT load
    pdus: list[str] = Field(default_factory=list)  # rack PDUs carrying the IT load
    cooling: list[str] = Field(default_factory=list)  # meters on the cooling plant feed


class Simulation(_Strict):
    """The built-in simulated province: physics per site, and the control endpoint."""

    seed: int = 1
    control_port: int = Field(18080, ge=1, le=65535)
    # How often the simulated meters refresh what they serve, s. A register read shows its
    # value of up to this long ago, as a real meter's does (about once a second).
    tick_s: float = Field(1.0, ge=0.05, le=60)
    sites: dict[str, SiteSimulation]


class InfluxDb(_Strict):
    """Where readings, interval energy and PUE results are also written (InfluxDB 2 API)."""

    url: str = Field(pattern=r"^https?://")
    org: str
    bucket: str
    token: SecretStr = SecretStr("")
    batch_size: int = Field(5000, ge=1, le=100_000)
    flush_interval_s: float = Field(1.0, gt=0, le=300)
    timeout_s: float = Field(10.0, gt=0, le=300)
    # How often the sites' PUE windows are evaluated and written.
    pue_interval_s: float = Field(60.0, ge=1, le=3600)
    # The on-disk buffer keeps at most this many points; beyond it the oldest are dropped.
    buffer_max_points: int = Field(10_000_000, ge=1000)


class StoreSettings(_Strict):
    """Where the readings are kept when not in the embedded SQLite store under
    --data-dir: a PostgreSQL server (store.postgres). The URL holds a password: write it
    as ${VAR}; it never appears in a dump, a repr or a log line."""

    url: SecretStr
    # connections each process keeps open at most (a report's snapshot holds one)
    pool_max: int = Field(10, ge=1, le=200)
    # A streaming replica (hot standby) of that server: reads go there once it has
    # replayed this process's own writes, else to url (store.pg_replica).
    read_url: SecretStr | None = None

    @field_validator("url", "read_url")
    @classmethod
    def _postgres_url(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None:
            return value
        if not value.get_secret_value().startswith(("postgresql://", "postgres://")):
            raise ValueError("store url must start with postgresql:// (the only server "
                             "store); leave store out for SQLite under --data-dir")
        return value


ENV_NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"
# The central service accepts request bodies up to this size (compressed and not).
DEFAULT_MAX_BODY_BYTES = 16 * 1024 * 1024
# An edge clock further than this from the central's is flagged (issue 14: 60 s).
DEFAULT_MAX_CLOCK_SKEW_S = 60.0


class CentralLink(_Strict):
    """At a data center (the edge): where `run` ships its readings, site definition and
    run log (central/ on the other side). The token is read from the environment
    variable ``token_env`` names, never written in the file."""

    url: str = Field(pattern=r"^https?://[^\s/]+(/[^\s]*)?$")
    token_env: str = Field(pattern=ENV_NAME_PATTERN)
    batch_size: int = Field(5000, ge=1, le=100_000)
    flush_interval_s: float = Field(1.0, gt=0, le=300)
    timeout_s: float = Field(10.0, gt=0, le=300)
    # The durable outbox keeps at most this many points; beyond it the oldest are dropped
    # (and counted): 10 million is weeks of a large site's readings.
    buffer_max_points: int = Field(10_000_000, ge=1000)


class DataCenter(_Strict):
    """At the central service: one data center whose edge may write ``sites`` (its ingest
    tokens are made with `pue-monitor central token create`)."""

    id: str = Field(pattern=ID_PATTERN)
    name: Text
    sites: list[Annotated[str, Field(pattern=ID_PATTERN)]] = Field(min_length=1)


class CentralService(_Strict):
    """`pue-monitor central`: the data centers whose edges write to it, and its limits."""

    data_centers: list[DataCenter] = Field(min_length=1)
    max_body_bytes: int = Field(DEFAULT_MAX_BODY_BYTES, ge=1024, le=1024 ** 3)
    max_clock_skew_s: float = Field(DEFAULT_MAX_CLOCK_SKEW_S, gt=0, le=3600)

    @model_validator(mode="after")
    def _one_owner(self) -> CentralService:
        owner: dict[str, str] = {}
        for dc in self.data_centers:
            for sid in dc.sites:
                if sid in owner:
                    raise ValueError(f"site {sid!r} is in data centers {owner[sid]!r} and "
                                     f"{dc.id!r}: a site has one edge")
                owner[sid] = dc.id
        return self

    def data_center(self, dc_id: str) -> DataCenter | None:
        return next((dc for dc in self.data_centers if dc.id == dc_id), None)

    def owner(self, site_id: str) -> str | None:
        """The data center whose edge may write this site."""
        return next((dc.id for dc in self.data_centers if site_id in dc.sites), None)


# Who may see which site: the roles a user has (web.access applies them).
USER_ROLES = ("operator", "auditor", "admin")
# /metrics and /healthz without a session: loopback and private networks (Prometheus on the
# same host, LAN or container network), never the public internet, unless configured.
DEFAULT_SCRAPE_NETWORKS = ("127.0.0.0/8", "::1/128", "10.0.0.0/8", "172.16.0.0/12",
                           "192.168.0.0/16", "fc00::/7")
MIN_SECRET_KEY_LENGTH = 32  # characters of a configured session key


class Organisation(_Strict):
    """An operator organisation and the sites it runs (its operators see only these)."""

    id: str = Field(pattern=ID_PATTERN)
    name: Text
    sites: list[str] = Field(default_factory=list)


class Scrape(_Strict):
    """Who reaches /metrics and /healthz without a session: a client in one of
    ``networks``, or one sending ``Authorization: Bearer <token>`` (write it as ${VAR})."""

    networks: list[IPv4Network | IPv6Network] = Field(
        default_factory=lambda: [ip_network(n) for n in DEFAULT_SCRAPE_NETWORKS])
    token: SecretStr | None = None

    @field_validator("networks", mode="before")
    @classmethod
    def _networks(cls, value: object) -> object:
        if not isinstance(value, list):
            return value
        out = []
        for i, item in enumerate(value):
            try:
                out.append(ip_network(str(item)))
            except ValueError as exc:
                raise ValueError(f"networks[{i}]: {str(item)!r} is not a network "
                                 f"such as 10.0.0.0/8 ({exc})") from None
        return out


class WebLimits(_Strict):
    """Bounded work in the web server (web.heavy, web.server): how many heavy requests
    (long reports and their downloads) are computed at once, how long one is waited for,
    and the size and time limits of every request."""

    # Heavy requests computed at once; more get 503 with Retry-After at once.
    heavy_concurrent: int = Field(2, ge=1, le=16)
    # A heavy request not done by then gets 503 (its work ends in its slot).
    heavy_timeout_s: float = Field(300.0, gt=0, le=3600)
    # The Retry-After of those 503 answers.
    retry_after_s: int = Field(30, ge=1, le=3600)
    # Request bodies (forms, API calls) larger than this get 413.
    max_body_bytes: int = Field(1024 * 1024, ge=1024, le=100 * 1024 * 1024)
    # Request line and headers larger than this are refused.
    max_header_bytes: int = Field(64 * 1024, ge=4096, le=1024 * 1024)
    # A connection silent this long (a slow or stalled client) is closed.
    idle_timeout_s: float = Field(60.0, gt=0, le=3600)
    # Open connections at most; more wait in the listen backlog.
    max_connections: int = Field(100, ge=10, le=10_000)


class Web(_Strict):
    """The web view's access rules (see README, "People and access")."""

    # false: no log-in at all, everyone sees every site (a single-operator install; the
    # page says so). Never the default.
    login: bool = True
    # Signs the session cookie; write it as ${VAR}. Without it a key is generated once
    # and kept in the data directory (mode 0600).
    secret_key: SecretStr | None = None
    # The Secure cookie flag: auto sets it when the request came over https.
    secure_cookies: Literal["auto", "always", "never"] = "auto"
    session_hours: float = Field(12.0, gt=0, le=24 * 30)
    # Reverse proxies in front that set X-Forwarded-For / -Proto (0: none). With one, the
    # client address (rate limit, scrape networks) and https come from its headers.
    proxy_hops: int = Field(0, ge=0, le=5)
    scrape: Scrape = Scrape()
    limits: WebLimits = WebLimits()

    @field_validator("secret_key")
    @classmethod
    def _key(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < MIN_SECRET_KEY_LENGTH:
            raise ValueError(f"secret_key needs at least {MIN_SECRET_KEY_LENGTH} characters")
        return value


class Config(_Strict):
    """A whole province (or one operator's estate)."""

    title: Text = Text(vi="Giám sát PUE trung tâm dữ liệu", en="Data center PUE monitor")
    polling: Polling = Polling()
    collection: Collection = Collection()
    retention: Retention = Retention()
    profiles_dir: str | None = None
    sites: list[Site]
    simulation: Simulation | None = None
    influxdb: InfluxDb | None = None
    # None: the SQLite store under --data-dir
    store: StoreSettings | None = None
    # At an edge: ship to the central service (central/); absent: keep everything here.
    central: CentralLink | None = None
    # `pue-monitor central` only: the data centers that write to it (its sites come from
    # their edges' definitions).
    ingest: CentralService | None = None
    organisations: list[Organisation] = Field(default_factory=list)
    web: Web = Web()
    emission_factors: dict[int, float] = Field(
        default_factory=lambda: dict(DEFAULT_EMISSION_FACTORS))
    # The longest report period, in calendar years (web, `pue-monitor report`).
    max_report_years: int = Field(DEFAULT_MAX_REPORT_YEARS, ge=1, le=100)
    # Filled by the loader from config/profiles (and profiles_dir), never from the YAML.
    profiles: dict[str, Profile] = Field(default_factory=dict, exclude=True)

    def devices(self) -> list[tuple[Site, Device]]:
        return [(site, device) for site in self.sites for device in site.devices]

    def polling_for(self, site: Site, device: Device) -> Polling:
        return device.polling or site.polling or self.polling

    def emission_factor(self, year: int) -> tuple[float, int] | None:
        """(kg CO2/kWh, the year it is for): that year's, else the latest earlier one."""
        known = {**DEFAULT_EMISSION_FACTORS, **self.emission_factors}
        years = [y for y in known if y <= year]
        return (known[max(years)], max(years)) if years else None

    def profile_of(self, device: Device) -> Profile:
        """The device's configured profile.

        :raises LookupError: the device is ``profile: auto`` (use :meth:`known_profile`).
        """
        if device.profile == AUTO_PROFILE:
            raise LookupError(f"device {device.id} has profile auto: its model is known only "
                              "once it has been identified (see Config.known_profile)")
        return self.profiles[device.profile]

    def known_profile(self, device: Device) -> Profile | None:
        """The configured profile, or None for ``profile: auto``."""
        if device.profile == AUTO_PROFILE:
            return None
        return self.profiles.get(device.profile)

    def organisation(self, org_id: str) -> Organisation | None:
        return next((org for org in self.organisations if org.id == org_id), None)

    def site(self, site_id: str) -> Site:
        for site in self.sites:
            if site.id == site_id:
                return site
        raise KeyError(site_id)
