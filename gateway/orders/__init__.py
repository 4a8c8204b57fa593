"""The order path: from a client's request, through the checks, to the venue and back.

router       client side and venue side: requests in, checks, forward or reject, reports routed back
ledger       the book: orders keyed by (session, ClOrdID) and by the venue's ClOrdID, fills, used IDs
lifecycle    how each event moves the ledger and risk state, one code path for live handling and replay
risk_stage   the bridge to the pure risk engine (`risk/`): reservations, fills, switches
rejects      a reason code as FIX fields: OrdRejReason/CxlRejReason and the one Text(58) renderer
trading_day  what carries over a trading-day boundary (open orders, used IDs, positions)
"""
