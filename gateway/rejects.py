"""How a reason code from the catalogue becomes FIX fields: OrdRejReason/CxlRejReason and a Text(58) string."""

from __future__ import annotations

import math

try:  # TEMP until risk.kernel lands
    from risk.reasons import CATALOGUE
except ImportError:
    CATALOGUE = {}

_MAX_TEXT = 150


def ord_rej_reason(code: str) -> int:
    entry = CATALOGUE.get(code)
    r = getattr(entry, "ord_rej_reason", None) if entry else None
    return 99 if r is None else int(r)


def cxl_rej_reason(code: str) -> int:
    entry = CATALOGUE.get(code)
    r = getattr(entry, "cxl_rej_reason", None) if entry else None
    return 99 if r is None else int(r)


def text(code: str, detail: str = "", value: float = math.nan, limit: float = math.nan) -> str:
    """`CODE: detail (value X > limit Y); see docs/runbooks/CODE.md`, cut to fit a FIX Text field."""
    figures = ""
    if not math.isnan(value) and not math.isnan(limit):
        figures = f" (value {value:g} vs limit {limit:g})"
    runbook = f"; see docs/runbooks/{code}.md"
    head = f"{code}: {detail}{figures}" if detail else f"{code}{figures}"
    return head[: _MAX_TEXT - len(runbook)] + runbook
