"""How a reason code from the catalogue becomes FIX fields: OrdRejReason/CxlRejReason and a Text(58) string."""

from __future__ import annotations

import math

from risk.reasons import CATALOGUE

_MAX_TEXT = 150


def ord_rej_reason(code: str) -> int:
    """OrdRejReason (103) of a code; 99 (Other) where no standard value fits."""
    r = CATALOGUE[code].ord_rej_reason
    return 99 if r is None else r


def cxl_rej_reason(code: str) -> int:
    """CxlRejReason (102) of a code; 99 (Other) where no standard value fits."""
    r = CATALOGUE[code].cxl_rej_reason
    return 99 if r is None else r


def text(code: str, detail: str = "", value: float = math.nan, limit: float = math.nan) -> str:
    """`CODE: detail (value X > limit Y); see docs/runbooks/CODE.md`, cut to fit a FIX Text field."""
    figures = ""
    if not math.isnan(value) and not math.isnan(limit):
        figures = f" (value {value:g} vs limit {limit:g})"
    runbook = f"; see docs/runbooks/{code}.md"
    head = f"{code}: {detail}{figures}" if detail else f"{code}{figures}"
    return head[: _MAX_TEXT - len(runbook)] + runbook
