"""Temporary limit overrides: one limit of one scope raised or lowered until a time, then back by itself.

Pure: `apply(cfg, overrides)` is the configuration with the overrides in force; its `limits_version` names them
(`<version>+OVR-<id>...`), so every decision taken under an override records it. The gateway keeps the overrides
(events OVR, gateway.orders.risk_stage) and swaps the engine onto `apply(...)` when one begins or ends.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import ValidationError

from config.risk_models import AccountLimits, GlobalLimits, InstrumentLimits, RiskConfig, SectorLimits

SCOPES = {"global": GlobalLimits, "account": AccountLimits, "instrument": InstrumentLimits, "sector": SectorLimits}


@dataclass(frozen=True, slots=True)
class Override:
    id: str
    scope: str  # "global", "account:ACC", "instrument:SYM", "sector:NAME"
    limit: str  # a limit's name in limits.toml, e.g. qty_max
    value: float
    until_ns: int


def _scoped(cfg: RiskConfig, scope: str) -> tuple[str, str]:
    kind, _, name = scope.partition(":")
    if kind not in SCOPES or (kind == "global") != (name == ""):
        raise ValueError(f"scope must be global, account:ACC, instrument:SYM or sector:NAME, not {scope!r}")
    known = {"account": {a.name for a in cfg.accounts}, "instrument": {i.symbol for i in cfg.instruments},
             "sector": set(cfg.sectors)}.get(kind)
    if known is not None and name not in known:
        raise ValueError(f"unknown {kind} {name!r}")
    return kind, name


def apply(cfg: RiskConfig, overrides: list[Override]) -> RiskConfig:
    """`cfg` with each override's limit set (later ones win on the same limit); ValueError for one that does not
    fit its scope (an unknown limit, a bad value)."""
    if not overrides:
        return cfg
    lim = cfg.limits
    tables = {"global": {"": lim.global_}, "account": dict(lim.accounts), "instrument": dict(lim.instruments),
              "sector": dict(lim.sectors)}
    for o in overrides:
        kind, name = _scoped(cfg, o.scope)
        model = SCOPES[kind]
        if o.limit not in model.model_fields or o.limit == "warn":
            raise ValueError(f"{o.limit!r} is not a limit of a {kind} scope: one of "
                             f"{', '.join(f for f in model.model_fields if f != 'warn')}")
        current = tables[kind].get(name) or model()
        old = getattr(current, o.limit)
        data = current.model_dump(exclude_none=True)
        data[o.limit] = {"limit": o.value, "warn": old.warn if old is not None else current.warn}
        try:
            tables[kind][name] = model.model_validate(data)
        except ValidationError as e:
            raise ValueError(f"{o.limit} = {o.value:g}: {e.errors()[0]['msg']}") from None
    new_limits = lim.model_copy(update={"global_": tables["global"][""], "accounts": tables["account"],
                                        "instruments": tables["instrument"], "sectors": tables["sector"]})
    version = cfg.limits_version + "".join(f"+OVR-{o.id}" for o in overrides)
    return cfg.model_copy(update={"limits": new_limits, "limits_version": version})


def expired(overrides: list[Override], now_ns: int) -> list[Override]:
    return [o for o in overrides if o.until_ns <= now_ns]
