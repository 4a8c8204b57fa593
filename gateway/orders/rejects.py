"""How a reason code from the catalogue becomes FIX fields: OrdRejReason/CxlRejReason and Text(58)."""

from __future__ import annotations

from risk.reasons import CATALOGUE
from risk.reasons import fix_text as text  # the one Text(58) renderer, beside the catalogue it renders

__all__ = ["cxl_rej_reason", "ord_rej_reason", "text"]


def ord_rej_reason(code: str) -> int:
    """OrdRejReason (103) of a code; 99 (Other) where no standard value fits."""
    r = CATALOGUE[code].ord_rej_reason
    return 99 if r is None else r


def cxl_rej_reason(code: str) -> int:
    """CxlRejReason (102) of a code; 99 (Other) where no standard value fits."""
    r = CATALOGUE[code].cxl_rej_reason
    return 99 if r is None else r

