"""Pre-trade risk core: pure, numba-compiled checks and state transitions. No I/O, no clocks.

Time comes in as int nanoseconds; files are read by ``config.risk_models``. Modules:

- ``risk.engine.RiskEngine``   the in-line API (below); one compiled call per order
- ``risk.decision``            ``Decision``, ``Outcome``
- ``risk.reasons``             the reason catalogue: ``CATALOGUE[code]`` -> ``Reason`` (id, meaning,
                               ``ord_rej_reason`` (103), ``cxl_rej_reason`` (102), ``runbook``)
- ``risk.replay``              batch replay of recorded flow (``EVENT_DTYPE``, ``replay(engine, events)``)
- ``risk.scenarios``           deterministic synthetic VaR scenarios from a seed
- ``risk.reference``           plain-Python reference rules, for tests only
- ``risk.kernel``              the compiled kernels and the buffer layout (internal)

Configuration (``config/risk_models.py``)::

    cfg = load_risk_config(instruments_path, accounts_path, limits_path, scenarios_path=None) -> RiskConfig
    cfg.limits_version            # content hash of the files, for the audit journal
    # every failure: config.errors.ConfigError(path, field, reason)

Engine::

    eng = RiskEngine(cfg, n_sessions=16, max_orders=100_000)
    eng.account_index(name) -> int          # -1 if unknown (the check then rejects UNKNOWN_ACCOUNT)
    eng.instrument_index(symbol) -> int     # -1 if unknown (UNKNOWN_INSTRUMENT)

    eng.check_new(session_idx, account_idx, instr_idx, side, qty, price, is_market, duplicate, now_ns) -> Decision
        side: 1 buy, 2 sell, 5/6 sell short (treated as sell); any other side rejects INVALID_ORDER.
        Market orders: price None/NaN, collar and tick checks skipped, notional and exposure at the
        reference price. duplicate: the ledger's verdict on (session, ClOrdID) -> DUPLICATE_CLORDID.
        Counts the message against the session throttle; an accepted order also counts against the
        account's order-rate window. Does NOT reserve exposure: call on_sent once it is sent.
    eng.check_replace(slot, new_qty, new_price, now_ns, session_idx, duplicate=False) -> Decision
        Judged on the change: the replacement's leaves (new_qty - filled) replace the original's.
        UNKNOWN_ORDER (slot not live), REPLACE_PENDING, REPLACE_BELOW_FILLED (new_qty <= filled).
    eng.count_message(session_idx, now_ns) -> Decision
        Any other inbound message (cancel request, ...) against the session throttle. Cancels are
        never blocked by kill switches or limits, only by MESSAGE_RATE.

    Lifecycle (each one compiled transition on the engine's arrays):
    eng.on_sent(account_idx, instr_idx, side, qty, price, session_idx=0) -> slot   # reserve worst case
    eng.on_ack(slot)
    eng.on_fill(slot, last_qty, last_px, now_ns=0) -> bool        # True: order done, slot freed
    eng.on_cancel(slot) -> bool / eng.on_venue_reject(slot) -> bool   # also unsolicited cancels
    eng.on_replace_pending(slot, new_qty, new_price)   # holds max(old, new) leaves until answered
    eng.on_replaced(slot, new_qty, new_price) -> bool / eng.on_replace_rejected(slot) -> bool
    eng.on_external_fill(account_idx, instr_idx, side, qty, px, now_ns=0)   # drop-copy fill, no order
    eng.on_bust(account_idx, instr_idx, side, qty, px)             # ExecType H: reverse the fill
    eng.on_correct(account_idx, instr_idx, side, old_qty, old_px, new_qty, new_px)   # ExecType G
    eng.load_position(account_idx, instr_idx, qty, avg_px)         # start-of-day position
    eng.set_reference_price(instr_idx, px)                         # live market data
    Slot events for a slot that holds no live order raise UnknownSlot; non-finite or non-positive
    quantities/prices raise ValueError and leave the state untouched.

    Operator switches (plain writes, take effect on the next check):
    eng.set_kill(scope, idx, on) / eng.set_reduce_only(scope, idx, on)   # scope: global|account|instrument

    Read-outs: position, avg_cost, open_exposure -> (buy_qty, sell_qty), account_gross, account_net,
    sector_exposure, cash, equity, daily_pnl, realised_pnl, reference_price, var_es, order(slot),
    open_order_count, utilisation(account_idx) -> {limit kind: value / limit}, kill_state,
    reduce_only_state.
    State: snapshot() / restore(snap), copy(), rebuild_aggregates(),
    with_config(new_cfg) -> RiskEngine   # reload: positions, orders (same slots), windows, switches
                                         # and prices carried over by name; swap the reference.

Decision: ``outcome`` (ACCEPT / WARN / REJECT), ``code``, ``value``, ``limit``, ``warnings`` (tuple of
(code, value, limit)), ``runbook``, ``ord_rej_reason``, ``cxl_rej_reason``, ``text()`` for FIX Text(58).
Same state and same order give the same decision.

Rules, in evaluation order (the first failure is reported): session index, MESSAGE_RATE, free order
slot (CHECK_ERROR), UNKNOWN_ACCOUNT, UNKNOWN_INSTRUMENT, INVALID_ORDER (side), INVALID_QTY,
INVALID_PRICE, PRICE_TICK, DUPLICATE_CLORDID, KILL_SWITCH_GLOBAL/ACCOUNT/INSTRUMENT,
RESTRICTED_INSTRUMENT, INSTRUMENT_NOT_PERMITTED, REDUCE_ONLY, NO_REFERENCE_PRICE, PRICE_COLLAR,
QTY_MIN, QTY_MAX, NOTIONAL_MAX, ORDER_RATE, POSITION_LIMIT, GROSS_EXPOSURE, NET_EXPOSURE,
SECTOR_EXPOSURE, LEVERAGE, DAILY_LOSS, VAR_LIMIT, ES_LIMIT.

Semantics chosen where the issue was silent:
- Every scope is a cap: the tightest of global/account/sector/instrument applies; a warn level is
  limit x warn fraction; value >= warn level warns, value > limit rejects (at the limit passes).
- Reference price fallback: live market data, then last fill, then configured; none -> reject.
  Exposure, notional of market orders and marks all use it.
- Worst case of open orders: position + all open buys, position - all open sells. Gross =
  sum |worst| x price x multiplier; net = max(|net if all buys fill|, |net if all sells fill|);
  sector = gross within the sector, per account; leverage = gross / (cash + marked positions).
- An aggregate limit (position, gross, net, sector, leverage, VaR, ES) rejects only an order that
  takes the measure over the limit AND raises it, so risk-reducing orders pass after a price move.
- Strictly reducing = cannot cross zero even if every open order on its side fills (a replace
  that shrinks an order also counts). It passes REDUCE_ONLY and DAILY_LOSS.
- Daily P&L = cash + marked positions - start-of-day base (= realised + marked under average cost).
- VaR/ES: historical simulation per account on the book's net quantity (position + open buys -
  open sells) x price x multiplier; VaR = k-th largest loss, ES = mean of the k largest,
  k = round((1 - confidence) x scenarios).
- Rate windows are exact sliding windows (rings of timestamps). A message counts if admitted by
  the session throttle, even if a later rule rejects it; an order counts towards the account's
  order rate only if accepted.
"""
