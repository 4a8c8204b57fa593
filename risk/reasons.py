"""The reason catalogue: every code a decision, the gateway or an alert can carry.

Codes are stable strings; the numeric id is what kernels return and must never be renumbered
(replay results and journals store it). Kernel ids live in ``risk.kernel`` so that the numba cache,
which only tracks the kernel's own source file, cannot hold a stale numbering.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from risk import kernel as K

RUNBOOK_DIR = "docs/runbooks"
TEXT_MAX = 150  # FIX Text(58): what strict counterparties display without cutting


def fix_text(code: str, detail: str = "", value: float = math.nan, limit: float = math.nan) -> str:
    """The one Text(58) of a reject: `CODE: detail (value X vs limit Y); see docs/runbooks/CODE.md`, the head
    cut so that the runbook page always fits in TEXT_MAX characters."""
    figures = ""
    if not math.isnan(value) and not math.isnan(limit):
        figures = f" (value {value:g} vs limit {limit:g})"
    runbook = f"; see {RUNBOOK_DIR}/{code}.md"
    head = f"{code}: {detail}{figures}" if detail else f"{code}{figures}"
    return head[: TEXT_MAX - len(runbook)] + runbook


@dataclass(frozen=True, slots=True)
class Reason:
    code: str
    id: int
    meaning: str
    detail: str  # format string over value and limit for the FIX Text(58)
    ord_rej_reason: int | None  # FIX 4.4 OrdRejReason (103), None where no standard value fits
    cxl_rej_reason: int | None  # FIX 4.4 CxlRejReason (102) for cancel/replace rejects
    raised_by: str  # "kernel", "gateway" or "alert"

    @property
    def runbook(self) -> str:
        return f"{RUNBOOK_DIR}/{self.code}.md"


# FIX 4.4 OrdRejReason: 0 broker option, 1 unknown symbol, 3 exceeds limit, 5 unknown order,
# 6 duplicate order, 13 incorrect quantity, 15 unknown account. CxlRejReason: 1 unknown order,
# 2 broker option, 3 already pending cancel/replace, 6 duplicate ClOrdID.
_ENTRIES: tuple[Reason, ...] = (
    Reason("CHECK_ERROR", K.CHECK_ERROR, "A check could not be evaluated; the order is rejected (fail closed).",
           "check could not be evaluated ({value:g})", None, None, "kernel"),
    Reason("MESSAGE_RATE", K.MESSAGE_RATE, "The session sent more messages in the window than its throttle allows.",
           "{value:g} msgs in window > limit {limit:g}", 0, 2, "kernel"),
    Reason("UNKNOWN_ACCOUNT", K.UNKNOWN_ACCOUNT, "The account is not in the reference data.",
           "account not in reference data", 15, 2, "kernel"),
    Reason("UNKNOWN_INSTRUMENT", K.UNKNOWN_INSTRUMENT, "The symbol is not in the reference data.",
           "symbol not in reference data", 1, 2, "kernel"),
    Reason("INVALID_ORDER", K.INVALID_ORDER, "Malformed order: missing or invalid fields, unsupported OrdType or Side.",
           "malformed or unsupported order ({value:g})", 11, 99, "kernel"),
    Reason("INVALID_QTY", K.INVALID_QTY, "Quantity is non-finite, not positive or absurdly large.",
           "qty {value:g} not in (0, {limit:g}]", 13, 2, "kernel"),
    Reason("INVALID_PRICE", K.INVALID_PRICE, "Limit price is non-finite, not positive or absurdly large.",
           "price {value:g} not in (0, {limit:g}]", None, 2, "kernel"),
    Reason("PRICE_TICK", K.PRICE_TICK, "Limit price is not a multiple of the instrument's tick size.",
           "price {value:g} not on tick {limit:g}", None, 2, "kernel"),
    Reason("DUPLICATE_CLORDID", K.DUPLICATE_CLORDID, "The ClOrdID was already used on this session.",
           "ClOrdID already used on this session", 6, 6, "kernel"),
    Reason("KILL_SWITCH_GLOBAL", K.KILL_SWITCH_GLOBAL, "The global kill switch is on: no new orders or replaces.",
           "global kill switch on", 0, 2, "kernel"),
    Reason("KILL_SWITCH_ACCOUNT", K.KILL_SWITCH_ACCOUNT, "The account's kill switch is on.",
           "account kill switch on", 0, 2, "kernel"),
    Reason("KILL_SWITCH_INSTRUMENT", K.KILL_SWITCH_INSTRUMENT, "The instrument's kill switch is on.",
           "instrument kill switch on", 0, 2, "kernel"),
    Reason("RESTRICTED_INSTRUMENT", K.RESTRICTED_INSTRUMENT, "The instrument is on the restricted list.",
           "instrument on restricted list", 0, 2, "kernel"),
    Reason("INSTRUMENT_NOT_PERMITTED", K.INSTRUMENT_NOT_PERMITTED, "The account may not trade this instrument.",
           "instrument not allowed for account", 0, 2, "kernel"),
    Reason("REDUCE_ONLY", K.REDUCE_ONLY, "Reduce-only mode is on and the order does not strictly reduce the position.",
           "reduce-only: order would not reduce position {value:g}", 0, 2, "kernel"),
    Reason("NO_REFERENCE_PRICE", K.NO_REFERENCE_PRICE, "No live, last-fill or configured reference price exists.",
           "no reference price for instrument", 0, 2, "kernel"),
    Reason("PRICE_COLLAR", K.PRICE_COLLAR, "Limit price deviates from the reference price by more than the collar.",
           "price off reference by {value:.4f} > collar {limit:.4f}", 3, 2, "kernel"),
    Reason("QTY_MIN", K.QTY_MIN, "Order quantity is below the minimum.",
           "order qty {value:g} < min {limit:g}", 13, 2, "kernel"),
    Reason("QTY_MAX", K.QTY_MAX, "Order quantity is above the maximum.",
           "order qty {value:g} > limit {limit:g}", 3, 2, "kernel"),
    Reason("NOTIONAL_MAX", K.NOTIONAL_MAX, "Order notional (qty x price x multiplier) is above the maximum.",
           "order notional {value:g} > limit {limit:g}", 3, 2, "kernel"),
    Reason("ORDER_RATE", K.ORDER_RATE, "The account sent more orders in the window than its throttle allows.",
           "{value:g} orders in window > limit {limit:g}", 3, 2, "kernel"),
    Reason("POSITION_LIMIT", K.POSITION_LIMIT, "Worst-case net position in the instrument (with open orders) over limit.",
           "worst-case position {value:g} > limit {limit:g}", 3, 2, "kernel"),
    Reason("GROSS_EXPOSURE", K.GROSS_EXPOSURE, "Account gross exposure (worst case with open orders) over limit.",
           "gross exposure {value:g} > limit {limit:g}", 3, 2, "kernel"),
    Reason("NET_EXPOSURE", K.NET_EXPOSURE, "Account net exposure (worst case with open orders) over limit.",
           "net exposure {value:g} > limit {limit:g}", 3, 2, "kernel"),
    Reason("SECTOR_EXPOSURE", K.SECTOR_EXPOSURE, "Account gross exposure in the instrument's sector over its budget.",
           "sector exposure {value:g} > budget {limit:g}", 3, 2, "kernel"),
    Reason("LEVERAGE", K.LEVERAGE, "Gross exposure over equity (cash plus marked positions) above the maximum.",
           "leverage {value:.3f} > limit {limit:.3f}", 3, 2, "kernel"),
    Reason("DAILY_LOSS", K.DAILY_LOSS, "Daily loss (realised plus marked) over limit; only reducing orders pass.",
           "daily loss {value:g} > limit {limit:g}", 3, 2, "kernel"),
    Reason("VAR_LIMIT", K.VAR_LIMIT, "Pre-trade historical-simulation VaR of the account book over limit.",
           "VaR {value:g} > limit {limit:g}", 3, 2, "kernel"),
    Reason("ES_LIMIT", K.ES_LIMIT, "Pre-trade expected shortfall of the account book over limit.",
           "ES {value:g} > limit {limit:g}", 3, 2, "kernel"),
    Reason("UNKNOWN_ORDER", K.UNKNOWN_ORDER, "Cancel/replace for an order the gateway does not know (or already done).",
           "order unknown or already done", 5, 1, "kernel"),
    Reason("REPLACE_PENDING", K.REPLACE_PENDING, "A replace is already pending for this order.",
           "a replace is already pending", None, 3, "kernel"),
    Reason("REPLACE_BELOW_FILLED", K.REPLACE_BELOW_FILLED, "Replacement quantity is not above the quantity already filled.",
           "new qty {value:g} <= filled {limit:g}", 13, 2, "kernel"),
    Reason("VENUE_DOWN", 40, "The venue session is not logged on; the order is rejected at once, never queued.",
           "venue session not logged on", 0, 2, "gateway"),
    Reason("ACCOUNT_NOT_PERMITTED", 41, "The client session may not trade this account.",
           "session not permitted for account", 15, 2, "gateway"),
    Reason("GATEWAY_STOPPING", 42, "The gateway is shutting down and accepts no new orders.",
           "gateway shutting down", 0, 2, "gateway"),
    Reason("DROPCOPY_UNKNOWN_FILL", 43, "Drop copy reported a fill for an order the gateway never saw; mirrored into positions.",
           "drop-copy fill for unknown order", None, None, "alert"),
    Reason("VENUE_SESSION_REJECT", 44, "The venue refused the forwarded request with a session-level Reject (35=3).",
           "venue session reject", 0, 2, "gateway"),
    Reason("VENUE_BUSINESS_REJECT", 45, "The venue refused the forwarded request with a BusinessMessageReject (35=j).",
           "venue business reject", 0, 2, "gateway"),
    Reason("VENUE_NO_ANSWER", 46, "The venue neither acknowledged nor rejected a request within venue.answer_timeout_s.",
           "no answer from the venue", None, None, "alert"),
    Reason("VENUE_STATUS_UNSUPPORTED", 47, "The venue refused an OrderStatusRequest (35=H); the order stays pending.",
           "venue refused a status request", None, None, "alert"),
    Reason("VENUE_VERSION_MISMATCH", 48, "The request cannot be expressed in the venue's FIX version; it was not sent.",
           "not expressible in the venue's FIX version", 0, 2, "gateway"),
    Reason("DAY_ORDER_CARRIED", 49, "DAY orders were still open at the trading-day rollover and carried into the new day.",
           "DAY order open at rollover", None, None, "alert"),
    Reason("SOD_POSITION_MISMATCH", 50, "A position carried over the rollover differs from the start-of-day positions file.",
           "carried position differs from the positions file", None, None, "alert"),
    Reason("SOD_POSITIONS_FILE_INVALID", 51, "The start-of-day positions file could not be read at a rollover; the carried book stands.",
           "positions file unusable", None, None, "alert"),
    Reason("ROLLOVER_FAILED", 52, "The scheduled trading-day rollover failed; the old trading day goes on.",
           "rollover failed", None, None, "alert"),
    Reason("CHECKPOINT_FAILED", 53, "A checkpoint of the order-path state could not be written; starts replay more of the day.",
           "checkpoint failed", None, None, "alert"),
    Reason("KILL_SWITCH_SESSION", 54, "The client session's kill switch is on.",
           "session kill switch on", 0, 2, "gateway"),
    Reason("KILL_SWITCH_TRADER", 55, "The trader's kill switch is on (SenderSubID(50) or the trader party).",
           "trader kill switch on", 0, 2, "gateway"),
    Reason("KILL_SWITCH_STRATEGY", 56, "The strategy's kill switch is on (the configured strategy tag).",
           "strategy kill switch on", 0, 2, "gateway"),
    Reason("INSTRUMENT_HALTED", 57, "Trading in the instrument is halted, by the venue (SecurityStatus) or an operator.",
           "instrument halted", 2, 2, "gateway"),
    Reason("STALE_REFERENCE_PRICE", 58, "The market-data reference price is older than its configured age.",
           "reference price {value:g} s old > max {limit:g} s", 0, 2, "gateway"),
    Reason("SELF_MATCH", 59, "The order would trade against a resting order of the same owner (self-match prevention).",
           "would trade against its own resting order", 0, 2, "gateway"),
    Reason("SHORT_LOCATE", 60, "A short sale without a locate, or beyond the quantity located for the day.",
           "short {value:g} > located {limit:g}", 0, 2, "gateway"),
    Reason("REJECT_STORM", 61, "Too many rejects in the window: the session's or account's breaker tripped.",
           "{value:g} rejects in window > {limit:g}", 0, 2, "gateway"),
    Reason("MESSAGE_STORM", 62, "The session sent messages above the storm rate: logged out, orders cancelled, breaker tripped.",
           "{value:g} messages in window > {limit:g}", 0, 2, "gateway"),
    Reason("REPEATED_EXECUTIONS", 63, "Too many fills in one instrument and side in the window: the strategy or account is blocked.",
           "{value:g} fills in window > {limit:g}", 0, 2, "gateway"),
    Reason("KYC_NOT_APPROVED", 64, "The account's KYC/AML status is not approved (suspended, closed or unknown).",
           "account KYC not approved", 15, 2, "gateway"),
    Reason("KYC_REVIEW_EXPIRED", 65, "The account's KYC/AML review has expired.",
           "account KYC review expired", 15, 2, "gateway"),
    Reason("WASH_TRADE", 66, "Surveillance: one beneficial owner bought and sold the same instrument within the window.",
           "possible wash trade", None, None, "alert"),
    Reason("ORDER_TO_TRADE", 67, "Surveillance: an account's order messages per fill in an instrument are above the ratio.",
           "order-to-trade ratio {value:g} > {limit:g}", None, None, "alert"),
    Reason("LAYERING", 68, "Surveillance: orders on one side cancelled shortly after a fill on the other (layering, spoofing).",
           "possible layering", None, None, "alert"),
    Reason("CANCEL_RATE", 69, "Surveillance: an account cancels more of its orders than the configured share.",
           "cancel rate {value:g} > {limit:g}", None, None, "alert"),
)

CATALOGUE: dict[str, Reason] = {r.code: r for r in _ENTRIES}
BY_ID: dict[int, Reason] = {r.id: r for r in _ENTRIES}

if len(CATALOGUE) != len(_ENTRIES) or len(BY_ID) != len(_ENTRIES):
    raise RuntimeError("reason catalogue has a duplicate code or id")


def reason(code: str) -> Reason:
    """Look a code up; KeyError names the code so a typo fails loudly."""
    return CATALOGUE[code]
