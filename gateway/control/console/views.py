"""The console's HTML, rendered on the server: the page, its live parts, and the login page.

Each live part is a function of a Snapshot and the user; the page is rendered with them, and the live updates
send a part again only when its HTML changed. Buttons that lead to an action exist only for operators: they fill
the action form (which never changes under the operator's hands); the action itself is a POST with the form's
CSRF token and a typed reason.
"""

from __future__ import annotations

import datetime as dt
import math
from html import escape
from typing import Any, Callable

from gateway.control.console.auth import User
from gateway.control.console.snapshot import Snapshot
from risk.reasons import CATALOGUE

ACTIONS = (("kill on", "Kill switch on"), ("kill off", "Kill switch off"), ("reduce_only on", "Reduce-only on"),
           ("reduce_only off", "Reduce-only off"), ("logout", "Log the session out"),
           ("logon", "Let the session log on"), ("clear_breaker", "Clear a breaker"))


def _t(ns_or_s: float | None) -> str:
    if not ns_or_s:
        return ""
    s = ns_or_s / 1e9 if ns_or_s > 1e12 else ns_or_s
    return dt.datetime.fromtimestamp(s, dt.timezone.utc).strftime("%H:%M:%S.%f")[:-3]


def _n(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        return f"{v:,.0f}" if abs(v) >= 1000 else f"{v:g}"
    return escape(str(v))


def _button(user: User, act: str, target: str, label: str, code: str = "", cls: str = "") -> str:
    if not user.may_act:
        return ""
    return (f'<button type="button" class="act {cls}" data-act="{escape(act)}" data-target="{escape(target)}" '
            f'data-code="{escape(code)}" data-label="{escape(label)}">{escape(label)}</button>')


def _table(headers: list[str], rows: list[list[str]], empty: str) -> str:
    if not rows:
        return f'<p class="empty">{escape(empty)}</p>'
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def head(s: Snapshot, user: User) -> str:
    st = s.status
    day = st.get("trading_day", {}).get("day", "")
    flags = []
    if st.get("kill_switch", {}).get("global"):
        flags.append('<span class="flag breach">GLOBAL KILL SWITCH ON</span>')
    if st.get("reduce_only", {}).get("global"):
        flags.append('<span class="flag warn">GLOBAL REDUCE-ONLY</span>')
    if not st.get("sessions", {}).get("venue"):
        flags.append('<span class="flag breach">VENUE DOWN</span>')
    return (f'<span>trading day <b>{escape(day)}</b></span> <span>limits <code>{escape(str(st.get("limits_version", "-")))}'
            f'</code></span> <span>open orders <b id="open-count">{st.get("open_orders", 0)}</b></span> '
            f'<span>events <b>{st.get("event_seq", 0)}</b></span> <span class="muted">as of {_t(s.taken_at)} UTC</span> '
            + " ".join(flags) + (" " + _button(user, "kill on", "global", "Kill all", cls="danger") if user.may_act else ""))


def sessions(s: Snapshot, user: User) -> str:
    rows = []
    for key, row in sorted(s.status.get("session_states", {}).items()):
        up = row.get("logged_on")
        seen = s.last_received.get(key)
        age = f"{_t(seen)} ({s.taken_at - seen:.0f} s ago)" if seen else ""
        sched = row.get("schedule") or {}
        sched_text = escape(", ".join(f"{k} {v}" for k, v in sched.items())) if isinstance(sched, dict) else escape(str(sched))
        buttons = ""
        if row.get("role") in ("client", "venue"):
            buttons = _button(user, "logout", key, "Log out") + _button(user, "logon", key, "Log on")
        rows.append([escape(key), escape(row.get("role", "")),
                     f'<span class="dot {"ok" if up else "down"}"></span>{"logged on" if up else "down"}',
                     _n(row.get("next_sender")), _n(row.get("next_target")), age, sched_text, buttons])
    return _table(["session", "role", "state", "next out", "next in", "last message", "schedule", ""], rows,
                  "no session")


def switches(s: Snapshot, user: User) -> str:
    st = s.status
    kill, ro = st.get("kill_switch", {}), st.get("reduce_only", {})
    rows = []

    def add(kind: str, scope: str) -> None:
        act = "kill off" if kind == "kill switch" else "reduce_only off"
        rows.append([f'<span class="flag {"breach" if kind == "kill switch" else "warn"}">{kind}</span>',
                     escape(scope), _button(user, act, scope, "Turn off")])

    for name, d in (("kill switch", kill), ("reduce-only", ro)):
        if d.get("global"):
            add(name, "global")
        for acc in d.get("accounts", []):
            add(name, f"account:{acc}")
        for sym in d.get("instruments", []):
            add(name, f"instrument:{sym}")
        for scope in d.get("scopes", []):
            add(name, scope)
    for sym, why in sorted((st.get("halted") or {}).items()):
        rows.append(['<span class="flag warn">halt</span>', escape(f"instrument:{sym}"), escape(str(why))])
    return _table(["switch", "scope", ""], rows, "no kill switch, reduce-only or halt is on")


def utilisation(s: Snapshot, user: User) -> str:
    util = s.status.get("utilisation", {})
    if not util:
        return '<p class="empty">no risk engine</p>'
    out = []
    for acc in sorted(util):
        bars = []
        for limit, ratio in sorted(util[acc].items()):
            warn = s.warn.get(acc, {}).get(limit, math.inf)
            cls = "breach" if ratio >= 1 else "warn" if ratio >= min(warn, 1.0) else "ok"
            width = max(0.0, min(ratio, 1.0)) * 100
            bars.append(f'<div class="bar" data-account="{escape(acc)}" data-limit="{escape(limit)}" '
                        f'data-ratio="{ratio:.6f}"><span class="name">{escape(limit)}</span>'
                        f'<span class="track"><span class="fill {cls}" style="width:{width:.1f}%"></span></span>'
                        f'<span class="pct">{100 * ratio if ratio > 0 else 0.0:.1f}%</span></div>')
        buttons = _button(user, "kill on", f"account:{acc}", "Kill", cls="danger") + \
            _button(user, "reduce_only on", f"account:{acc}", "Reduce-only")
        out.append(f'<div class="account" id="acct-{escape(acc)}"><h3>{escape(acc)} {buttons}</h3>{"".join(bars)}</div>')
    return '<div class="accounts">' + "".join(out) + "</div>"


def orders(s: Snapshot, user: User) -> str:
    rows = [[escape(o["session"]), escape(o["cl_ord_id"]), escape(o["account"]), escape(o["symbol"]),
             "buy" if o["side"] == "1" else "sell", _n(o["qty"]), _n(o["cum_qty"]), escape(o["status"]),
             "pending" if o["pending"] else ""] for o in s.status.get("orders", [])[:200]]
    return _table(["session", "ClOrdID", "account", "symbol", "side", "qty", "filled", "status", ""], rows,
                  "no open order")


def decisions(s: Snapshot, user: User) -> str:
    rows = []
    for d in s.decisions:
        code = d.get("code") or ""
        link = (f'<a class="code" href="/runbooks/{escape(code)}" title="{escape(CATALOGUE[code].meaning)}">'
                f"{escape(code)}</a>") if code in CATALOGUE else escape(code)
        cls = {"reject": "breach", "warn": "warn", "venue-reject": "breach", "undelivered": "breach"}.get(
            d["decision"], "")
        rows.append([_t(d["ts"]), escape(d.get("session") or ""), f'<span class="cl">{escape(d.get("cl_ord_id") or "")}</span>',
                     escape(d.get("account") or ""), escape(d.get("symbol") or ""), escape(d.get("kind") or ""),
                     _n(d.get("qty")), _n(d.get("price")), f'<span class="flag {cls}">{escape(d["decision"])}</span>',
                     link])
    return _table(["time", "session", "ClOrdID", "account", "symbol", "kind", "qty", "price", "decision", "code"],
                  rows, "no decision yet today")


def breaks(s: Snapshot, user: User) -> str:
    rows = [[escape(b["trade_date"]), escape(b["type"]), escape(b["account"]), escape(b["symbol"]),
             escape(b["exec_id"]), _t(b["detected_ns"]), escape(b["note"])] for b in s.breaks]
    return _table(["day", "break", "account", "symbol", "exec id", "detected", "note"], rows, "no open break")


def alerts(s: Snapshot, user: User) -> str:
    brk = [[f'<a class="code" href="/runbooks/{escape(b["code"])}">{escape(b["code"])}</a>', escape(b["scope"]),
            f'{_n(b["value"])} &gt; {_n(b["limit"])}',
            _button(user, "clear_breaker", b["scope"], "Clear", code=b["code"])] for b in s.status.get("breakers", [])]
    al = [[_t(a["ts"]), f'<a class="code" href="/runbooks/{escape(a["code"])}">{escape(a["code"])}</a>',
           escape(a["account"] or ""), escape(a["symbol"] or ""), escape(a["detail"] or "")] for a in s.alerts]
    counts = ", ".join(f"{escape(k)} {v:g}" for k, v in sorted(s.alert_counts.items()) if v)
    return ("<h3>Tripped breakers</h3>" + _table(["breaker", "scope", "value", ""], brk, "no breaker tripped")
            + "<h3>Surveillance alerts today</h3>" + _table(["time", "alert", "account", "symbol", "detail"], al,
                                                            "no surveillance alert")
            + f'<p class="muted">alerts since the start: {counts or "none"}</p>')


PARTS: dict[str, tuple[str, Callable[[Snapshot, User], str]]] = {
    "head": ("", head), "sessions": ("Sessions", sessions), "utilisation": ("Limit utilisation", utilisation),
    "switches": ("Kill switches, reduce-only, halts", switches), "alerts": ("Alerts and breakers", alerts),
    "decisions": ("Latest decisions", decisions), "orders": ("Open orders", orders),
    "breaks": ("Reconciliation breaks", breaks),
}


WIDE = ("sessions", "decisions")  # parts with many columns: the whole width of the page


def parts(s: Snapshot, user: User) -> dict[str, str]:
    return {pid: fn(s, user) for pid, (_title, fn) in PARTS.items()}


def page(s: Snapshot, user: User, csrf: str, gateway: str, flash: str = "") -> str:
    p = parts(s, user)
    sections = "".join(f'<section class="part{" wide" if pid in WIDE else ""}"><h2>{escape(title)}</h2>'
                       f'<div id="{pid}">{p[pid]}</div></section>' for pid, (title, _fn) in PARTS.items() if pid != "head")
    options = "".join(f'<option value="{a}">{escape(label)}</option>' for a, label in ACTIONS)
    form = "" if not user.may_act else f"""
<form id="action-form" class="actions" method="post" action="/action">
 <input type="hidden" name="csrf" value="{escape(csrf)}">
 <b id="action-what">Action</b>
 <select name="action" aria-label="action">{options}</select>
 <input name="target" placeholder="scope or session: global, account:ACC1, FIXGW-&gt;OMS1" aria-label="target" size="30">
 <input name="code" placeholder="breaker code" aria-label="breaker code" size="18">
 <input name="why" placeholder="reason (journaled)" aria-label="reason" required size="34">
 <button type="submit" class="danger">Do it</button>
</form>"""
    msg = f'<p class="flash">{escape(flash)}</p>' if flash else ""
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{escape(gateway)} console</title>
<link rel="stylesheet" href="/static/console.css"></head>
<body data-role="{escape(user.role)}">
<header><h1>{escape(gateway)}</h1><div id="head">{p["head"]}</div>
<form method="post" action="/logout" class="who"><input type="hidden" name="csrf" value="{escape(csrf)}">
<span>{escape(user.name)} ({escape(user.role)})</span> <button type="submit">Sign out</button></form></header>
{msg}{form}
<main>{sections}</main>
<script src="/static/console.js"></script>
</body></html>"""


def login(gateway: str, csrf: str, error: str = "") -> str:
    err = f'<p class="flash error">{escape(error)}</p>' if error else ""
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{escape(gateway)} console: sign in</title>
<link rel="stylesheet" href="/static/console.css"></head>
<body class="login"><form method="post" action="/login" class="login">
<h1>{escape(gateway)}</h1>{err}
<input type="hidden" name="csrf" value="{escape(csrf)}">
<label>User <input name="user" autocomplete="username" required autofocus></label>
<label>Password <input name="password" type="password" autocomplete="current-password" required></label>
<button type="submit">Sign in</button></form></body></html>"""


def runbook(code: str, text: str) -> str:
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{escape(code)}</title>
<link rel="stylesheet" href="/static/console.css"></head><body><p><a href="/">back to the console</a></p>
<pre class="runbook">{escape(text)}</pre></body></html>"""

