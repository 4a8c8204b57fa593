"""Risk reference data and limits: pydantic models and their loaders.

Files (see config/examples/):
- instruments.csv: symbol,sector,multiplier,tick_size,reference_price (reference_price may be empty)
- accounts.toml:   [accounts.NAME] cash = ..., allowed_instruments = ["SYM", ...] (omit: all)
- limits.toml:     restricted = [...]; [settings]; [global]; [accounts.NAME]; [sectors.NAME];
                   [instruments.SYM]. A limit is a number or {limit = x, warn = f}; a scope's
                   ``warn = f`` is the default warn fraction of its limits. Every scope is a cap:
                   the tightest of global, account, sector and instrument applies.
- scenarios:       optional, .npy (scenarios x instruments, instruments.csv order) or .csv with one
                   column per symbol; returns as fractions. Required when a VaR/ES limit is set.

Every failure raises ConfigError(path, field, reason).
"""
from __future__ import annotations

import csv
import hashlib
import json
import math
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from config.errors import ConfigError

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._\-/]{0,31}$"
MAX_RATE = 100_000  # rate windows are exact rings of this many timestamps at most


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Instrument(_Strict):
    symbol: str = Field(pattern=NAME_PATTERN)
    sector: str = Field(pattern=NAME_PATTERN)
    multiplier: float = Field(default=1.0, gt=0, allow_inf_nan=False)
    tick_size: float = Field(gt=0, allow_inf_nan=False)
    reference_price: float | None = Field(default=None, gt=0, allow_inf_nan=False)


class Account(_Strict):
    name: str = Field(pattern=NAME_PATTERN)
    cash: float = Field(allow_inf_nan=False)
    allowed_instruments: tuple[str, ...] | None = None  # None: every instrument


KYC_STATUSES = ("approved", "suspended", "closed")
RISK_RATINGS = ("low", "medium", "high")


def _one_of(v: str, allowed: tuple[str, ...]) -> str:
    if v not in allowed:
        raise ValueError(f"must be one of {', '.join(allowed)}")
    return v


class Kyc(_Strict):
    """An account's KYC/AML standing: only an approved account whose review has not expired may trade."""

    status: str
    review_expires: str  # YYYY-MM-DD, the last day the review is good for
    risk_rating: str

    _status = field_validator("status")(lambda v: _one_of(v, KYC_STATUSES))
    _rating = field_validator("risk_rating")(lambda v: _one_of(v, RISK_RATINGS))

    @field_validator("review_expires")
    @classmethod
    def _date(cls, v: str) -> str:
        import datetime as dt

        try:
            return dt.date.fromisoformat(v).isoformat()
        except ValueError:
            raise ValueError("must be a date YYYY-MM-DD") from None


class Limit(_Strict):
    limit: float = Field(gt=0, allow_inf_nan=False)
    warn: float | None = Field(default=None, gt=0, le=1)  # fraction of limit at which to warn

    @property
    def warn_level(self) -> float:
        return self.limit * self.warn if self.warn is not None else math.inf


class _Scope(_Strict):
    warn: float | None = Field(default=None, gt=0, le=1)

    @model_validator(mode="before")
    @classmethod
    def _numbers_to_limits(cls, data: Any) -> Any:
        # A bare number is a limit with the scope's default warn fraction.
        if not isinstance(data, Mapping):
            return data
        scope_warn = data.get("warn")
        out: dict[str, Any] = {}
        for key, val in data.items():
            if key == "warn":
                out[key] = val
            elif isinstance(val, (int, float)) and not isinstance(val, bool):
                out[key] = {"limit": val, "warn": scope_warn}
            elif isinstance(val, Mapping) and "warn" not in val:
                out[key] = {**val, "warn": scope_warn}
            else:
                out[key] = val
        return out


def _integral_rate(v: Limit | None) -> Limit | None:
    if v is not None and (v.limit != int(v.limit) or v.limit > MAX_RATE):
        raise ValueError(f"must be a whole number of messages between 1 and {MAX_RATE}")
    return v


class InstrumentLimits(_Scope):
    qty_min: Limit | None = None
    qty_max: Limit | None = None
    notional_max: Limit | None = None
    collar_pct: Limit | None = None  # fraction: 0.05 = 5 % off the reference price
    position_max: Limit | None = None


class SectorLimits(_Scope):
    gross_max: Limit | None = None  # per-account gross exposure budget in this sector


class AccountLimits(_Scope):
    qty_min: Limit | None = None
    qty_max: Limit | None = None
    notional_max: Limit | None = None
    position_max: Limit | None = None
    gross_max: Limit | None = None
    net_max: Limit | None = None
    leverage_max: Limit | None = None
    daily_loss_max: Limit | None = None
    var_max: Limit | None = None
    es_max: Limit | None = None
    order_rate_max: Limit | None = None  # orders per order_rate_window_ms

    _rate = field_validator("order_rate_max")(_integral_rate)


class GlobalLimits(AccountLimits):
    collar_pct: Limit | None = None
    sector_gross_max: Limit | None = None
    message_rate_max: Limit | None = None  # messages per session per message_rate_window_ms

    _mrate = field_validator("message_rate_max")(_integral_rate)


class RiskSettings(_Strict):
    var_confidence: float = Field(default=0.99, gt=0.5, lt=1)
    order_rate_window_ms: int = Field(default=1000, gt=0, le=86_400_000)
    message_rate_window_ms: int = Field(default=1000, gt=0, le=86_400_000)
    max_order_qty: float = Field(default=1e9, gt=0, allow_inf_nan=False)  # beyond: INVALID_QTY
    max_price: float = Field(default=1e9, gt=0, allow_inf_nan=False)  # beyond: INVALID_PRICE


class LimitsFile(_Strict):
    restricted: tuple[str, ...] = ()
    settings: RiskSettings = RiskSettings()
    global_: GlobalLimits = Field(default=GlobalLimits(), alias="global")
    accounts: dict[str, AccountLimits] = {}
    sectors: dict[str, SectorLimits] = {}
    instruments: dict[str, InstrumentLimits] = {}

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class RiskConfig(BaseModel):
    """Everything the risk engine needs, validated and cross-checked."""

    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)

    instruments: tuple[Instrument, ...]
    accounts: tuple[Account, ...]
    limits: LimitsFile
    scenarios: np.ndarray | None = None  # (n_scenarios, n_instruments) returns, instrument order
    limits_version: str = ""
    sources: dict[str, str] = {}
    # Short-sale locates for the day: (account, symbol) -> shares located (risk.controls)
    locates: dict[tuple[str, str], float] = {}
    # KYC/AML of each account (risk.controls); empty: no KYC file, no KYC gating
    kyc: dict[str, "Kyc"] = {}

    @property
    def restricted(self) -> frozenset[str]:
        return frozenset(self.limits.restricted)

    @property
    def settings(self) -> RiskSettings:
        return self.limits.settings

    @property
    def sectors(self) -> tuple[str, ...]:
        seen: dict[str, None] = {}
        for ins in self.instruments:
            seen.setdefault(ins.sector, None)
        return tuple(seen)

    @model_validator(mode="after")
    def _cross_check(self) -> RiskConfig:
        _cross_check(self)
        return self


def _src(cfg: RiskConfig, kind: str) -> str:
    return cfg.sources.get(kind, f"<{kind}>")


def _cross_check(cfg: RiskConfig) -> None:
    symbols: set[str] = set()
    for n, ins in enumerate(cfg.instruments):
        if ins.symbol in symbols:
            raise ConfigError(_src(cfg, "instruments"), f"row {n + 1}.symbol", f"duplicate symbol {ins.symbol!r}")
        symbols.add(ins.symbol)
    if not symbols:
        raise ConfigError(_src(cfg, "instruments"), "symbol", "no instruments")
    names: set[str] = set()
    for acc in cfg.accounts:
        if acc.name in names:
            raise ConfigError(_src(cfg, "accounts"), f"accounts.{acc.name}", "duplicate account")
        names.add(acc.name)
        for sym in acc.allowed_instruments or ():
            if sym not in symbols:
                raise ConfigError(_src(cfg, "accounts"), f"accounts.{acc.name}.allowed_instruments",
                                  f"unknown symbol {sym!r}")
    if not names:
        raise ConfigError(_src(cfg, "accounts"), "accounts", "no accounts")
    lim = cfg.limits
    for name in lim.accounts:
        if name not in names:
            raise ConfigError(_src(cfg, "limits"), f"accounts.{name}", "unknown account")
    sectors = set(cfg.sectors)
    for name in lim.sectors:
        if name not in sectors:
            raise ConfigError(_src(cfg, "limits"), f"sectors.{name}", "unknown sector")
    for sym in lim.instruments:
        if sym not in symbols:
            raise ConfigError(_src(cfg, "limits"), f"instruments.{sym}", "unknown symbol")
    var_fields = [("global", lim.global_)] + [(f"accounts.{k}", v) for k, v in lim.accounts.items()]
    for where, scope in var_fields:
        for fld in ("var_max", "es_max"):
            if getattr(scope, fld) is not None and cfg.scenarios is None:
                raise ConfigError(_src(cfg, "limits"), f"{where}.{fld}", "a VaR/ES limit needs a scenarios file")
    if cfg.scenarios is not None:
        sc = cfg.scenarios
        if sc.ndim != 2 or sc.shape[1] != len(cfg.instruments) or sc.shape[0] < 1:
            raise ConfigError(_src(cfg, "scenarios"), "shape",
                              f"expected (scenarios, {len(cfg.instruments)}), got {sc.shape}")
        if not np.isfinite(sc).all():
            raise ConfigError(_src(cfg, "scenarios"), "values", "non-finite return")


def _first_error(exc: ValidationError, prefix: str = "") -> tuple[str, str]:
    err = exc.errors()[0]
    loc = ".".join(str(p) for p in err["loc"])
    field = f"{prefix}.{loc}" if prefix and loc else (prefix or loc or "<root>")
    return field, err["msg"]


def _version(parts: list[bytes]) -> str:
    h = hashlib.sha256()
    for p in parts:
        h.update(hashlib.sha256(p).digest())
    return h.hexdigest()[:16]


def risk_config_from_data(instruments: list[Mapping[str, Any]], accounts: list[Mapping[str, Any]],
                          limits: Mapping[str, Any], scenarios: np.ndarray | None = None,
                          sources: Mapping[str, str] | None = None,
                          limits_version: str | None = None) -> RiskConfig:
    """Build a RiskConfig from plain data (what the files parse to); used by tests and the loader."""
    src = dict(sources or {})
    ins_models: list[Instrument] = []
    for n, row in enumerate(instruments):
        try:
            ins_models.append(Instrument.model_validate(row))
        except ValidationError as e:
            raise ConfigError(src.get("instruments", "<instruments>"), *_first_error(e, f"row {n + 1}")) from e
    acc_models: list[Account] = []
    for row in accounts:
        try:
            acc_models.append(Account.model_validate(row))
        except ValidationError as e:
            raise ConfigError(src.get("accounts", "<accounts>"),
                              *_first_error(e, f"accounts.{row.get('name', '?')}")) from e
    try:
        lim = LimitsFile.model_validate(limits)
    except ValidationError as e:
        raise ConfigError(src.get("limits", "<limits>"), *_first_error(e)) from e
    sc = None if scenarios is None else np.ascontiguousarray(scenarios, dtype=np.float64)
    if limits_version is None:
        blob = json.dumps([list(map(dict, instruments)), list(map(dict, accounts)), limits],
                          sort_keys=True, default=str).encode()
        limits_version = _version([blob, b"" if sc is None else sc.tobytes()])
    return RiskConfig(instruments=tuple(ins_models), accounts=tuple(acc_models), limits=lim,
                      scenarios=sc, limits_version=limits_version, sources=src)


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as e:
        raise ConfigError(str(path), "<file>", e.strerror or str(e)) from e


def _toml(path: Path, raw: bytes) -> dict[str, Any]:
    try:
        return tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise ConfigError(str(path), "<syntax>", str(e)) from e


INSTRUMENT_COLUMNS = ("symbol", "sector", "multiplier", "tick_size", "reference_price")


def _instruments_csv(path: Path, raw: bytes) -> list[dict[str, Any]]:
    try:
        rows = list(csv.DictReader(raw.decode("utf-8").splitlines()))
    except (csv.Error, UnicodeDecodeError) as e:
        raise ConfigError(str(path), "<syntax>", str(e)) from e
    out: list[dict[str, Any]] = []
    for n, row in enumerate(rows):
        if None in row:
            raise ConfigError(str(path), f"row {n + 1}", "more cells than header columns")
        extra = set(row) - set(INSTRUMENT_COLUMNS)
        if extra:
            raise ConfigError(str(path), ",".join(sorted(extra)), "unknown column")
        # empty cells mean "use the default"; pydantic parses numbers from the strings
        out.append({k: v.strip() for k, v in row.items() if v is not None and v.strip() != ""})
    seen: set[str] = set()
    for n, row in enumerate(out):
        sym = row.get("symbol", "")
        if sym in seen:  # checked here so that the scenario file is read against a sound header
            raise ConfigError(str(path), f"row {n + 1}.symbol", f"duplicate symbol {sym!r}")
        seen.add(sym)
    return out


def _accounts_toml(path: Path, raw: bytes) -> list[dict[str, Any]]:
    doc = _toml(path, raw)
    table = doc.get("accounts")
    if not isinstance(table, dict):
        raise ConfigError(str(path), "accounts", "missing [accounts.NAME] tables")
    extra = set(doc) - {"accounts"}
    if extra:
        raise ConfigError(str(path), ",".join(sorted(extra)), "unknown key")
    out = []
    for name, body in table.items():
        if not isinstance(body, dict):
            raise ConfigError(str(path), f"accounts.{name}", "must be a table")
        out.append({"name": name, **body})
    return out


def _scenarios(path: Path, raw: bytes, symbols: list[str]) -> np.ndarray:
    if path.suffix == ".npy":
        try:
            arr = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as e:
            raise ConfigError(str(path), "<file>", str(e)) from e
        if arr.ndim != 2 or arr.shape[1] != len(symbols):
            raise ConfigError(str(path), "shape", f"expected (scenarios, {len(symbols)}), got {arr.shape}")
        return np.ascontiguousarray(arr, dtype=np.float64)
    lines = raw.decode("utf-8").splitlines()
    reader = csv.reader(lines)
    try:
        header = [h.strip() for h in next(reader)]
    except StopIteration:
        raise ConfigError(str(path), "<header>", "empty file") from None
    unknown = [h for h in header if h not in symbols]
    if unknown:
        raise ConfigError(str(path), unknown[0], "column is not a known symbol")
    missing = [s for s in symbols if s not in header]
    if missing:
        raise ConfigError(str(path), missing[0], "no scenario column for this instrument")
    col = {s: header.index(s) for s in symbols}
    data: list[list[float]] = []
    for n, row in enumerate(reader):
        if len(row) != len(header):
            raise ConfigError(str(path), f"row {n + 1}", f"{len(row)} cells, header has {len(header)}")
        try:
            vals = [float(row[col[s]]) for s in symbols]
        except ValueError as e:
            raise ConfigError(str(path), f"row {n + 1}", str(e)) from e
        if not all(math.isfinite(v) for v in vals):
            raise ConfigError(str(path), f"row {n + 1}", "non-finite return")
        data.append(vals)
    if not data:
        raise ConfigError(str(path), "<rows>", "no scenarios")
    return np.asarray(data, dtype=np.float64)


LOCATE_COLUMNS = ("account", "symbol", "quantity")


def _csv_rows(path: Path, raw: bytes, columns: tuple[str, ...]) -> list[dict[str, str]]:
    """The rows of a CSV that must have exactly `columns`, cells stripped; ConfigError names what is wrong."""
    try:
        reader = csv.DictReader(raw.decode("utf-8").splitlines())
        rows = list(reader)
    except (csv.Error, UnicodeDecodeError) as e:
        raise ConfigError(str(path), "<syntax>", str(e)) from e
    if tuple(reader.fieldnames or ()) != columns:
        raise ConfigError(str(path), "<header>", f"the header must be {','.join(columns)}")
    out = []
    for n, row in enumerate(rows):
        if None in row:
            raise ConfigError(str(path), f"row {n + 1}", "more cells than header columns")
        out.append({c: (row[c] or "").strip() for c in columns})
    return out


def _locates_csv(path: Path, raw: bytes, accounts: set[str], symbols: set[str]) -> dict[tuple[str, str], float]:
    """account,symbol,quantity rows; an account or symbol the risk files do not know is an error, not a locate
    that silently never applies."""
    rows = _csv_rows(path, raw, LOCATE_COLUMNS)
    out: dict[tuple[str, str], float] = {}
    for n, row in enumerate(rows):
        acc, sym, qty_text = (row[c] for c in LOCATE_COLUMNS)
        if acc not in accounts:
            raise ConfigError(str(path), f"row {n + 1}.account", f"unknown account {acc!r}")
        if sym not in symbols:
            raise ConfigError(str(path), f"row {n + 1}.symbol", f"unknown symbol {sym!r}")
        try:
            qty = float(qty_text)
        except ValueError:
            raise ConfigError(str(path), f"row {n + 1}.quantity", f"not a number: {qty_text!r}") from None
        if not (qty >= 0) or math.isinf(qty):
            raise ConfigError(str(path), f"row {n + 1}.quantity", "must be a finite number >= 0")
        if (acc, sym) in out:
            raise ConfigError(str(path), f"row {n + 1}", f"{acc}/{sym} is listed twice")
        out[(acc, sym)] = qty
    return out


KYC_COLUMNS = ("account", "status", "review_expires", "risk_rating")


def _kyc_csv(path: Path, raw: bytes, accounts: set[str]) -> dict[str, Kyc]:
    """account,status,review_expires,risk_rating: one row per account, every account of accounts.toml."""
    rows = _csv_rows(path, raw, KYC_COLUMNS)
    out: dict[str, Kyc] = {}
    for n, row in enumerate(rows):
        acc = row["account"]
        if acc not in accounts:
            raise ConfigError(str(path), f"row {n + 1}.account", f"unknown account {acc!r}")
        if acc in out:
            raise ConfigError(str(path), f"row {n + 1}.account", f"{acc} is listed twice")
        try:
            out[acc] = Kyc(status=row["status"], review_expires=row["review_expires"], risk_rating=row["risk_rating"])
        except ValidationError as e:
            raise ConfigError(str(path), *_first_error(e, f"row {n + 1}")) from e
    missing = sorted(accounts - set(out))
    if missing:
        raise ConfigError(str(path), "<rows>", f"no KYC record for {', '.join(missing)} (an account not yet "
                                               "reviewed is listed as suspended)")
    return out


def load_risk_config(instruments_path: str | Path, accounts_path: str | Path, limits_path: str | Path,
                     scenarios_path: str | Path | None = None, locates_path: str | Path | None = None,
                     kyc_path: str | Path | None = None) -> RiskConfig:
    """Load and cross-check the risk files; limits_version hashes their contents (audit journal)."""
    ip, ap, lp = Path(instruments_path), Path(accounts_path), Path(limits_path)
    raws = [_read(ip), _read(ap), _read(lp)]
    instruments = _instruments_csv(ip, raws[0])
    accounts = _accounts_toml(ap, raws[1])
    limits = _toml(lp, raws[2])
    sources = {"instruments": str(ip), "accounts": str(ap), "limits": str(lp)}
    scen = None
    if scenarios_path is not None:
        sp = Path(scenarios_path)
        raws.append(_read(sp))
        sources["scenarios"] = str(sp)
        scen = _scenarios(sp, raws[-1], [str(r.get("symbol", "")) for r in instruments])
    locates: dict[tuple[str, str], float] = {}
    if locates_path is not None:
        lo = Path(locates_path)
        raws.append(b"locates:" + _read(lo))  # a locate file must not hash like a scenario file
        sources["locates"] = str(lo)
        locates = _locates_csv(lo, raws[-1][len(b"locates:"):], {str(a.get("name", "")) for a in accounts},
                               {str(r.get("symbol", "")) for r in instruments})
    kyc: dict[str, Kyc] = {}
    if kyc_path is not None:
        kp = Path(kyc_path)
        raws.append(b"kyc:" + _read(kp))
        sources["kyc"] = str(kp)
        kyc = _kyc_csv(kp, raws[-1][len(b"kyc:"):], {str(a.get("name", "")) for a in accounts})
    cfg = risk_config_from_data(instruments, accounts, limits, scen, sources, _version(raws))
    return cfg.model_copy(update={"locates": locates, "kyc": kyc}) if locates or kyc else cfg
