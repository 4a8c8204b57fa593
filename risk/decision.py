"""The result of a pre-trade check, and its rendering for FIX Text(58)."""
from __future__ import annotations

from enum import IntEnum
from typing import NamedTuple

from risk.reasons import CATALOGUE, RUNBOOK_DIR, TEXT_MAX, fix_text


class Outcome(IntEnum):
    ACCEPT = 0
    WARN = 1  # accepted, but a warn threshold was crossed: raise telemetry
    REJECT = 2


Warning_ = tuple[str, float, float]  # (code, measured value, limit)


class Decision(NamedTuple):
    outcome: Outcome
    code: str | None = None
    value: float = 0.0
    limit: float = 0.0
    warnings: tuple[Warning_, ...] = ()

    @property
    def accepted(self) -> bool:
        return self.outcome != Outcome.REJECT

    @property
    def runbook(self) -> str | None:
        return f"{RUNBOOK_DIR}/{self.code}.md" if self.code else None

    @property
    def ord_rej_reason(self) -> int | None:
        return CATALOGUE[self.code].ord_rej_reason if self.code else None

    @property
    def cxl_rej_reason(self) -> int | None:
        return CATALOGUE[self.code].cxl_rej_reason if self.code else None

    def text(self) -> str:
        """FIX Text(58): code, figures and the runbook page, kept under TEXT_MAX characters."""
        if self.outcome == Outcome.REJECT and self.code:
            return fix_text(self.code, CATALOGUE[self.code].detail.format(value=self.value, limit=self.limit))
        if self.warnings:
            parts = [f"{c} {v:g}/{lim:g}" for c, v, lim in self.warnings]
            out = "WARN " + ", ".join(parts)
        else:
            out = "accepted"
        return out if len(out) <= TEXT_MAX else out[: TEXT_MAX - 3] + "..."


ACCEPTED = Decision(Outcome.ACCEPT)

