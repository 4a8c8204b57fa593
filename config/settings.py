"""The gateway's one configuration file (TOML), validated into pydantic models.

QuickFIX settings are generated from these models (gateway.fix.settings); nobody keeps a QuickFIX .cfg by hand.
Relative paths in the file are resolved against the file's own folder, so a config can travel with its data.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from config.errors import ConfigError
from config.schedule import Schedule, TimeZone

CompID = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.\-]+$")]
Port = Annotated[int, Field(ge=1, le=65535)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


FixVersion = Literal["FIX.4.2", "FIX.4.4", "FIX.5.0SP2"]
# Tags a desk really uses beyond the standard (strategy IDs and the like); FIX reserves 5000-9999 for them
# but counterparties also use standard tags the dictionary does not define for a message type.
ExtraTag = Annotated[int, Field(ge=1, le=99_999)]


class FixSessionPolicy(_Strict):
    """What a counterparty agreement fixes per FIX session: version, sequence resets, timestamps, validation."""

    # FIX.5.0SP2 runs over FIXT.1.1 (BeginString FIXT.1.1, DefaultApplVerID FIX.5.0SP2).
    fix_version: FixVersion = "FIX.4.4"
    # Sequence numbers survive restarts unless the agreement says otherwise. A Logon carrying
    # ResetSeqNumFlag(141)=Y from the counterparty is always honoured.
    reset_on_logon: bool = False
    reset_on_logout: bool = False
    reset_on_disconnect: bool = False
    # FIX 4.4's UTCTimestamp is seconds or milliseconds; strict engines refuse more digits.
    timestamp_precision: Literal[0, 3, 6, 9] = 3
    # SendingTime(52) further than this from our clock is a session Reject (SessionRejectReason 10).
    max_latency_s: Annotated[int, Field(ge=1, le=86_400)] = 120
    # The agreement starts each trading day at MsgSeqNum 1: at the rollover the session is logged out, its
    # store is reset and its message log archived with the day, and it logs on again.
    rollover_reset: bool = False
    extra_tags: list[ExtraTag] = Field(default_factory=list)
    # When the session may be up and when MsgSeqNum restarts (config.schedule); None: non-stop, never reset.
    schedule: Schedule | None = None

    @property
    def begin_string(self) -> str:
        return "FIXT.1.1" if self.fix_version == "FIX.5.0SP2" else self.fix_version


class ClientSession(FixSessionPolicy):
    """One OMS session the acceptor will take: the client's CompID and what it may trade."""

    sender_comp_id: CompID  # the client's SenderCompID (our TargetCompID)
    target_comp_id: CompID = "FIXGW"  # the CompID the client addresses us as
    accounts: list[Annotated[str, Field(min_length=1)]] = Field(min_length=1)
    # Used when a NewOrderSingle carries no Account(1); still checked against `accounts`.
    default_account: Annotated[str, Field(min_length=1)] | None = None
    cancel_on_disconnect: bool = False

    @model_validator(mode="after")
    def _default_is_permitted(self) -> "ClientSession":
        if self.default_account is not None and self.default_account not in self.accounts:
            raise ValueError(f"default_account {self.default_account!r} is not one of the session's accounts")
        return self


class AcceptorSettings(_Strict):
    port: Port
    heartbeat_s: Annotated[int, Field(ge=1, le=300)] = 30
    # QuickFIX's acceptor binds every interface; this filters peers by address after accept.
    allowed_remote_addresses: list[str] = Field(default_factory=list)
    clients: list[ClientSession] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_sessions(self) -> "AcceptorSettings":
        seen: set[tuple[str, str]] = set()
        for c in self.clients:
            key = (c.sender_comp_id, c.target_comp_id)
            if key in seen:
                raise ValueError(f"client session {key[0]}->{key[1]} is listed twice")
            seen.add(key)
        return self


class InitiatorSettings(FixSessionPolicy):
    """A session the gateway opens: to the venue's order port or to its drop-copy port."""

    host: Literal["127.0.0.1", "localhost"] | str = "127.0.0.1"
    port: Port
    sender_comp_id: CompID
    target_comp_id: CompID
    heartbeat_s: Annotated[int, Field(ge=1, le=300)] = 30
    reconnect_s: Annotated[int, Field(ge=1, le=300)] = 5
    enabled: bool = True


class VenueSettings(InitiatorSettings):
    """The venue's order-entry session."""

    # After a restart, ask the venue (OrderStatusRequest 35=H) about orders sent whose fate is unknown.
    # Off for venues that do not support 35=H: those orders then stay pending, with an alert.
    order_status_requests: bool = True
    # A request the venue neither acknowledges nor rejects within this time raises VENUE_NO_ANSWER.
    answer_timeout_s: Annotated[float, Field(gt=0, le=3600)] = 10.0


class MarketDataSettings(InitiatorSettings):
    """The venue's market-data session: last/bid/ask per instrument for the price collar, market-order notional
    and marks, and SecurityStatus halts. A price older than `max_age_s` rejects the instrument's orders
    (STALE_REFERENCE_PRICE); an instrument the feed has not priced yet uses the last fill, else the configured
    reference price, and each decision records which."""

    symbols: list[Annotated[str, Field(min_length=1)]] = Field(default_factory=list)  # empty: every instrument
    max_age_s: Annotated[float, Field(gt=0, le=86_400)] = 5.0


class RiskFiles(_Strict):
    instruments: Path
    accounts: Path
    limits: Path
    scenarios: Path | None = None
    # Start-of-day positions and cash (CSV: account,symbol,quantity,average_price); read when a day begins
    # without a snapshot of the previous one, and compared with the snapshot at every rollover.
    positions: Path | None = None
    # Short-sale locates for the trading day (CSV: account,symbol,quantity); see [controls.short_sale].
    locates: Path | None = None
    # KYC/AML standing of every account (CSV: account,status,review_expires,risk_rating); none: no KYC gating.
    kyc: Path | None = None


class ReconSettings(_Strict):
    """Drop-copy reconciliation: how long either copy of a fill may lag the other before it is a break."""

    grace_s: Annotated[float, Field(gt=0, le=86_400)] = 5.0
    price_tolerance: Annotated[float, Field(ge=0)] = 1e-9
    end_of_day_utc: Annotated[str, Field(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$")] | None = None
    report_dir: Path = Path("reports")  # relative: under the state folder


HHMM = Annotated[str, Field(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$")]


class TradingDaySettings(_Strict):
    """When a trading day ends and what the next one inherits (see docs/operations.md, Trading days)."""

    rollover_at: HHMM | None = None  # local time in time_zone; None: only `fixgw admin rollover`
    time_zone: TimeZone = "UTC"
    retention_days: Annotated[int, Field(ge=1, le=3650)] = 30  # archived days kept under <state_dir>/archive
    carry_kill_switches: bool = True  # a kill switch stays on until an operator turns it off
    carry_reduce_only: bool = True


class MetricsSettings(_Strict):
    port: Annotated[int, Field(ge=0, le=65535)] = 0  # 0: no metrics endpoint
    host: str = "127.0.0.1"


class ConsoleSettings(_Strict):
    """The operator console in the browser (gateway.control.console): off unless this section is present."""

    port: Annotated[int, Field(ge=1, le=65535)]
    # aiohttp binds this address only (unlike QuickFIX's acceptor): keep it on loopback and put a TLS proxy in front
    host: str = "127.0.0.1"
    users_file: Path  # TOML: [users.NAME] role = "viewer" | "operator", password_hash = "$argon2id$..."
    session_max_age_s: Annotated[int, Field(ge=60, le=7 * 86_400)] = 8 * 3600
    # The session cookie's Secure flag: browsers send it over HTTPS only (and to http://127.0.0.1 and localhost,
    # which they count as secure). Off only for a plain-HTTP test set-up on another name.
    cookie_secure: bool = True
    login_max_failures: Annotated[int, Field(ge=1, le=1000)] = 5  # per user name and per address, in the window
    login_window_s: Annotated[int, Field(ge=1, le=86_400)] = 300
    refresh_s: Annotated[float, Field(gt=0, le=10)] = 0.5  # how often the live page is brought up to date


class SelfMatchGroup(_Strict):
    """Accounts that count as one owner for self-match prevention (a desk, a firm's house accounts)."""

    name: Annotated[str, Field(min_length=1)]
    accounts: list[Annotated[str, Field(min_length=1)]] = Field(min_length=1)
    action: Literal["reject_new", "cancel_resting"] | None = None  # None: the [controls.self_match] action


class SelfMatchSettings(_Strict):
    """A new order that would trade against a resting order of the same owner: refuse it, or cancel the resting
    one first (CME's SMP). The owner is the client's SMP identifier when the order carries one, else the
    account's group, else the account."""

    enabled: bool = False
    action: Literal["reject_new", "cancel_resting"] = "reject_new"
    smp_id_tag: ExtraTag | None = None  # e.g. 7928 (CME's SelfMatchPreventionID)
    groups: list[SelfMatchGroup] = Field(default_factory=list)

    @model_validator(mode="after")
    def _one_group_per_account(self) -> "SelfMatchSettings":
        seen: dict[str, str] = {}
        for g in self.groups:
            for a in g.accounts:
                if a in seen:
                    raise ValueError(f"account {a!r} is in self-match groups {seen[a]!r} and {g.name!r}")
                seen[a] = g.name
        return self


class ShortSaleSettings(_Strict):
    """SellShort (54=5) needs a locate: a locate ID in `locate_tag`, or quantity left in the locate file
    ([risk] locates). SellShortExempt (54=6) is not accepted by the gateway at all."""

    require_locate: bool = False
    locate_tag: ExtraTag | None = None  # e.g. 5700: the client's locate ID from its stock-loan desk


class BreakerSettings(_Strict):
    """Circuit breakers that trip by themselves and stay tripped until an operator clears them. 0: off."""

    reject_storm_count: Annotated[int, Field(ge=0)] = 0  # more rejects than this in the window, per session/account
    reject_storm_window_s: Annotated[float, Field(gt=0, le=3600)] = 10.0
    # The session throttle ([limits] message rate) rejects above one rate; above this higher one the session is
    # logged out, its open orders cancelled, and it stays out until the breaker is cleared.
    message_storm_count: Annotated[int, Field(ge=0)] = 0
    message_storm_window_s: Annotated[float, Field(gt=0, le=3600)] = 1.0
    # RTS 6 15(3): more fills than this in one instrument and side within the window blocks the strategy (the
    # account when the order names none).
    repeated_exec_count: Annotated[int, Field(ge=0)] = 0
    repeated_exec_window_s: Annotated[float, Field(gt=0, le=86_400)] = 60.0


class ControlsSettings(_Strict):
    """The controls beyond limits (docs/controls.md): who sent an order, and what stops it."""

    # The trader of an order: a Parties entry with this PartyRole (12 = executing trader) when set and present,
    # else SenderSubID(50).
    trader_party_role: Annotated[int, Field(ge=1, le=999)] | None = None
    strategy_tag: ExtraTag | None = None  # e.g. 7940: the algorithm / strategy identifier
    self_match: SelfMatchSettings = SelfMatchSettings()
    short_sale: ShortSaleSettings = ShortSaleSettings()
    breakers: BreakerSettings = BreakerSettings()

    def user_tags(self) -> list[int]:
        """The tags the controls read that FIX leaves to bilateral agreement: every client dictionary has them."""
        tags = (self.strategy_tag, self.self_match.smp_id_tag, self.short_sale.locate_tag)
        return sorted({t for t in tags if t is not None and t >= 5000})


class SurveillanceSettings(_Strict):
    """Surveillance of the order flow (gateway.events.surveillance): live in the gateway and `fixgw surveillance`."""

    live: bool = True  # the running gateway follows its event log and raises alerts as patterns complete

    wash_window_s: Annotated[float, Field(gt=0, le=86_400)] = 60.0  # one owner buying and selling within it
    otr_max: Annotated[float, Field(gt=0)] = 50.0  # order messages per fill, per account and instrument
    otr_min_orders: Annotated[int, Field(ge=1)] = 100
    layering_window_s: Annotated[float, Field(gt=0, le=3600)] = 5.0  # cancels of the other side after a fill
    layering_min_cancels: Annotated[int, Field(ge=1)] = 3
    cancel_rate_max: Annotated[float, Field(gt=0, le=1)] = 0.9  # client cancels per new order, per account
    cancel_rate_min_orders: Annotated[int, Field(ge=1)] = 50


class GatewaySettings(_Strict):
    name: str = "fixgw"
    state_dir: Path = Path("var/fixgw")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    max_open_orders: Annotated[int, Field(ge=1, le=10_000_000)] = 100_000  # risk engine order slots
    # QuickFIX FileLog of every message: the offline reconciliation reads it.
    fix_message_log: bool = True
    admin_socket: Path = Path("admin.sock")  # relative: under the state folder
    # A checkpoint of the order-path state is made (in another process) every this many events, so that a
    # start replays at most about this many; 0: never (a start replays the whole trading day).
    checkpoint_every_events: Annotated[int, Field(ge=0, le=100_000_000)] = 50_000
    # How limits change while running: "reload" (fixgw admin reload, SIGHUP, and `fixgw limits`) or
    # "four_eyes" (only `fixgw limits propose` by one person and `approve` by another).
    limit_changes: Literal["reload", "four_eyes"] = "reload"

    @field_validator("state_dir")
    @classmethod
    def _not_empty(cls, v: Path) -> Path:
        if str(v).strip() == "":
            raise ValueError("must not be empty")
        return v


class GatewayConfig(_Strict):
    gateway: GatewaySettings = GatewaySettings()
    acceptor: AcceptorSettings
    venue: VenueSettings
    dropcopy: InitiatorSettings | None = None
    marketdata: MarketDataSettings | None = None
    risk: RiskFiles | None = None
    reconciliation: ReconSettings = ReconSettings()
    trading_day: TradingDaySettings = TradingDaySettings()
    metrics: MetricsSettings = MetricsSettings()
    controls: ControlsSettings = ControlsSettings()
    surveillance: SurveillanceSettings = SurveillanceSettings()
    console: ConsoleSettings | None = None
    source: Path | None = Field(default=None, exclude=True)

    @model_validator(mode="after")
    def _distinct_ports(self) -> "GatewayConfig":
        if self.venue.port == self.acceptor.port:
            raise ValueError("venue.port equals acceptor.port: the gateway would connect to itself")
        return self

    @model_validator(mode="after")
    def _controls_need_risk(self) -> "GatewayConfig":
        c = self.controls
        b = c.breakers
        on = c.self_match.enabled or c.short_sale.require_locate or b.reject_storm_count or b.message_storm_count \
            or b.repeated_exec_count
        if on and self.risk is None:
            raise ValueError("[controls] need the [risk] section: the controls run beside the risk engine")
        if self.marketdata is not None and self.marketdata.enabled and self.risk is None:
            raise ValueError("[marketdata] needs the [risk] section: its prices are the risk checks' reference")
        return self

    @property
    def max_price_age_s(self) -> float | None:
        """How old a market-data price may be, when the market-data session is on."""
        md = self.marketdata
        return md.max_age_s if md is not None and md.enabled else None

    @property
    def state_dir(self) -> Path:
        return self.gateway.state_dir

    @property
    def admin_socket(self) -> Path:
        p = self.gateway.admin_socket
        return p if p.is_absolute() else self.state_dir / p

    @property
    def archive_dir(self) -> Path:
        return self.state_dir / "archive"

    @property
    def report_dir(self) -> Path:
        p = self.reconciliation.report_dir
        return p if p.is_absolute() else self.state_dir / p

    def client(self, sender_comp_id: str, target_comp_id: str) -> ClientSession | None:
        for c in self.acceptor.clients:
            if c.sender_comp_id == sender_comp_id and c.target_comp_id == target_comp_id:
                return c
        return None


def _resolve(base: Path, p: Path) -> Path:
    return p if p.is_absolute() else (base / p).resolve()


def _field_path(loc: tuple[object, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def parse_config(data: dict[str, object], path: Path) -> GatewayConfig:
    """Validate an already-parsed TOML document; errors name `path`, the first bad field and why."""
    try:
        cfg = GatewayConfig.model_validate(data)
    except ValidationError as e:
        err = e.errors()[0]
        reason = err["msg"]
        if err["type"] == "extra_forbidden":
            reason = "unknown setting (check the spelling against the README's configuration reference)"
        raise ConfigError(str(path), _field_path(tuple(err["loc"])), reason) from None
    base = path.parent.resolve()
    risk = cfg.risk
    if risk is not None:
        risk = RiskFiles(
            instruments=_resolve(base, risk.instruments),
            accounts=_resolve(base, risk.accounts),
            limits=_resolve(base, risk.limits),
            scenarios=_resolve(base, risk.scenarios) if risk.scenarios else None,
            positions=_resolve(base, risk.positions) if risk.positions else None,
            locates=_resolve(base, risk.locates) if risk.locates else None,
            kyc=_resolve(base, risk.kyc) if risk.kyc else None,
        )
        for name in ("instruments", "accounts", "limits", "scenarios", "positions", "locates", "kyc"):
            p = getattr(risk, name)
            if p is not None and not p.is_file():
                raise ConfigError(str(path), f"risk.{name}", f"file not found: {p}")
    gw = cfg.gateway.model_copy(update={"state_dir": _resolve(base, cfg.gateway.state_dir)})
    console = cfg.console
    if console is not None:
        console = console.model_copy(update={"users_file": _resolve(base, console.users_file)})
        if not console.users_file.is_file():
            raise ConfigError(str(path), "console.users_file", f"file not found: {console.users_file}")
    return cfg.model_copy(update={"gateway": gw, "risk": risk, "console": console, "source": path.resolve()})


def load_config(path: str | Path) -> GatewayConfig:
    p = Path(path)
    try:
        raw = p.read_bytes()
    except OSError as e:
        raise ConfigError(str(p), "(file)", f"cannot read: {e.strerror or e}") from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise ConfigError(str(p), "(file)", "not UTF-8 text") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(str(p), "(syntax)", f"invalid TOML: {e}") from None
    return parse_config(data, p)


def dump_config(cfg: GatewayConfig) -> str:
    """The configuration as TOML that load_config reads back to the same settings (paths made absolute)."""
    from config.toml_writer import dump_toml

    return dump_toml(cfg.model_dump(mode="json", exclude_none=True))
