"""The order path: from a client's request, through the checks, to the venue and back.

router       Router: the client side and the venue side around the state it owns (ledger, risk, their lock)
client_side  a client's new order, replace and cancel: parsed, checked, recorded, forwarded or rejected
venue_side   the venue's reports routed back, its rejects, requests it never answered, the gateway's own cancels
requests     what those parts pass between them (NewOrder, Verdict, Sent) and what they need from risk
ledger       the book: orders keyed by (session, ClOrdID) and by the venue's ClOrdID, fills, used IDs
lifecycle    how each event moves the ledger and risk state, one code path for live handling and replay
risk_stage   the bridge to the pure risk engine (`risk/`): reservations, fills, switches
rejects      a reason code as FIX fields: OrdRejReason/CxlRejReason and the one Text(58) renderer
trading_day  what carries over a trading-day boundary (open orders, used IDs, positions)
"""
