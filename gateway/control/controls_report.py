"""`fixgw report controls`: what the gateway's controls did on one trading day, mapped to MiFID II RTS 6
(Articles 12, 15, 16 and 17) and SEC Rule 15c3-5 (c)(1) and (c)(2), as Markdown, one self-contained HTML page and a
PNG of limit utilisation.

Every figure is counted from the audit journal (journal.sqlite: decisions, fills, admin actions, surveillance
alerts) or the reconciliation's store (recon.sqlite), within the day's event numbers, and carries the query that
counted it ([Qn], listed at the end), so that an auditor can re-run it. Only the utilisation chart is computed
differently: the day's event log, which the journal's rows project, replayed through the risk stage
(gateway.control.utilisation).
"""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from config.settings import GatewayConfig
from gateway.control.report_doc import Doc, Fig
from gateway.events.journal_query import day_range, iso
from risk.reasons import CATALOGUE

KILL = ("KILL_SWITCH_GLOBAL", "KILL_SWITCH_ACCOUNT", "KILL_SWITCH_INSTRUMENT", "KILL_SWITCH_SESSION",
        "KILL_SWITCH_TRADER", "KILL_SWITCH_STRATEGY")
EXPOSURE = ("POSITION_LIMIT", "GROSS_EXPOSURE", "NET_EXPOSURE", "SECTOR_EXPOSURE", "LEVERAGE", "DAILY_LOSS",
            "VAR_LIMIT", "ES_LIMIT")
PRICE = ("PRICE_COLLAR", "NO_REFERENCE_PRICE", "STALE_REFERENCE_PRICE", "PRICE_TICK", "INVALID_PRICE")
SURVEILLANCE = ("WASH_TRADE", "ORDER_TO_TRADE", "LAYERING", "CANCEL_RATE")
# Codes for a check that could not be evaluated, or a path that was not there: the request was refused rather
# than let through (fail closed).
FAILED_CLOSED = ("CHECK_ERROR", "NO_REFERENCE_PRICE", "STALE_REFERENCE_PRICE", "VENUE_DOWN", "GATEWAY_STOPPING")


@dataclass(frozen=True)
class Control:
    rule: str
    name: str
    codes: tuple[str, ...]


RTS6 = (
    Control("Art. 12", "Kill functionality: cancel any or all unexecuted orders", KILL + ("REDUCE_ONLY",)),
    Control("Art. 15(1)(a)", "Price collars", PRICE),
    Control("Art. 15(1)(b)", "Maximum order value", ("NOTIONAL_MAX",)),
    Control("Art. 15(1)(c)", "Maximum order volume", ("QTY_MAX", "QTY_MIN", "INVALID_QTY")),
    Control("Art. 15(1)(d)", "Maximum messages", ("MESSAGE_RATE", "ORDER_RATE", "MESSAGE_STORM", "REJECT_STORM")),
    Control("Art. 15(3)", "Repeated automated executions", ("REPEATED_EXECUTIONS",)),
    Control("Art. 16", "Real-time monitoring and alerts", SURVEILLANCE),
    Control("Art. 17", "Market and credit risk of the firm and its clients", EXPOSURE),
)
SEC = (
    Control("(c)(1)(i)", "Credit and capital thresholds, per customer", EXPOSURE),
    Control("(c)(1)(ii)", "Erroneous or duplicative orders (price, size, duplicates)",
            PRICE + ("QTY_MAX", "QTY_MIN", "INVALID_QTY", "NOTIONAL_MAX", "DUPLICATE_CLORDID", "INVALID_ORDER",
                     "ORDER_RATE", "MESSAGE_RATE")),
    Control("(c)(2)(i)", "Regulatory requirements before entry (short sales, halts, self-match)",
            ("SHORT_LOCATE", "INSTRUMENT_HALTED", "SELF_MATCH")),
    Control("(c)(2)(ii)", "Restricted securities", ("RESTRICTED_INSTRUMENT", "INSTRUMENT_NOT_PERMITTED",
                                                     "UNKNOWN_INSTRUMENT")),
    Control("(c)(2)(iii)", "Access by pre-approved persons and accounts only",
            ("UNKNOWN_ACCOUNT", "ACCOUNT_NOT_PERMITTED", "KYC_NOT_APPROVED", "KYC_REVIEW_EXPIRED")),
)
# Request decisions that are no control of either rule: order-state answers, not risk.
NOT_A_CONTROL = ("UNKNOWN_ORDER", "REPLACE_PENDING", "REPLACE_BELOW_FILLED", "VENUE_SESSION_REJECT",
                 "VENUE_BUSINESS_REJECT", "VENUE_VERSION_MISMATCH", "VENUE_NO_ANSWER")


class _Journal:
    """Read-only queries of one day, each recorded in the document as it runs."""

    def __init__(self, doc: Doc, path: Path, lo: int, hi: int) -> None:
        self.doc, self.path, self.lo, self.hi = doc, path, lo, hi
        self.db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        self.db.row_factory = sqlite3.Row

    def day(self, table: str, where: str = "", joined: str = "") -> str:
        """FROM `table` (and `joined`) WHERE the row is the day's."""
        bounds = f"{table}.q >= {self.lo}" + (f" AND {table}.q < {self.hi}" if self.hi < 2 ** 62 else "")
        return f"FROM {table}{', ' + joined if joined else ''} WHERE {bounds}" + (f" AND ({where})" if where else "")

    def rows(self, label: str, sql: str) -> tuple[list[sqlite3.Row], str]:
        ref = self.doc.query(label, self.path.name, sql)
        return list(self.db.execute(sql)), ref

    def one(self, label: str, sql: str) -> Fig:
        rows, ref = self.rows(label, sql)
        return Fig(rows[0][0] if rows and rows[0][0] is not None else 0, ref)

    def by(self, label: str, sql: str) -> tuple[dict[str, int], str]:
        rows, ref = self.rows(label, sql)
        return {r[0]: r[1] for r in rows}, ref


def _codes_sql(codes: tuple[str, ...]) -> str:
    return "(" + ", ".join(f"'{c}'" for c in codes) + ")"


def build(cfg: GatewayConfig, day: str, generated_ns: int | None = None, png: Path | None = None) -> Doc:
    """The controls report of trading day `day` (YYYYMMDD); `png`: where to draw the utilisation chart."""
    state = cfg.state_dir
    jpath = state / "journal.sqlite"
    lo, hi = day_range(jpath, day)
    doc = Doc(f"Controls report, trading day {day}")
    j = _Journal(doc, jpath, lo, hi)
    try:
        _summary(doc, j, cfg, day, generated_ns)
        _limits(doc, j)
        _rule_tables(doc, j)
        _kill_and_breakers(doc, j)
        _alerts(doc, j)
        _reconciliation(doc, cfg, day)
        _utilisation(doc, cfg, day, png)
        _overrides_and_actions(doc, j)
        _failed_closed(doc, j)
    finally:
        j.db.close()
    return doc


def _summary(doc: Doc, j: _Journal, cfg: GatewayConfig, day: str, generated_ns: int | None) -> None:
    now = generated_ns if generated_ns is not None else time.time_ns()
    span = j.db.execute("SELECT MIN(ts), MAX(ts) " + j.day('decisions')).fetchone()
    doc.p(f"Gateway `{cfg.gateway.name}`; journal `{j.path}`, event numbers {j.lo} to "
          f"{'the end' if j.hi >= 2 ** 62 else j.hi - 1}; first decision "
          f"{iso(span[0]) if span[0] else '-'}, last {iso(span[1]) if span[1] else '-'}; written {iso(now)}.")
    doc.p("Each figure is followed by the query that counted it, `[Qn]`, listed at the end. A request is a "
          "NewOrderSingle, an OrderCancelReplaceRequest or an OrderCancelRequest from a client session.")
    doc.h(1, "The day in figures")
    dec, ref = j.by("Requests by decision",
                    "SELECT decision, COUNT(*) " + j.day('decisions') + " GROUP BY decision ORDER BY decision")
    checked = j.one("Requests checked (accepted, accepted with a warning, rejected)",
                    "SELECT COUNT(*) " + j.day('decisions', "decision IN ('accept', 'warn', 'reject')"))
    fills = j.one("Fills (ExecType F)", "SELECT COUNT(*) " + j.day('fills', "exec_type = 'F'"))
    notional = j.one("Filled notional (qty x price)",
                     "SELECT ROUND(SUM(last_qty * last_px), 2) " + j.day('fills', "exec_type = 'F'"))
    alerts = j.one("Surveillance alerts", "SELECT COUNT(*) " + j.day('alerts'))
    trips = j.one("Circuit-breaker trips", "SELECT COUNT(*) " + j.day('admin', "action = 'breaker trip'"))
    kills = j.one("Kill-switch and reduce-only uses (on)",
                  "SELECT COUNT(*) " + j.day('admin', "action IN ('kill on', 'reduce_only on')"))
    doc.table(["figure", "value"], [
        ["requests checked", checked],
        ["accepted", Fig(dec.get("accept", 0), ref)],
        ["accepted with a warning (near a limit)", Fig(dec.get("warn", 0), ref)],
        ["rejected", Fig(dec.get("reject", 0), ref)],
        ["orders cancelled by the gateway (kill switch, self-match, disconnect)", Fig(dec.get("gateway-cancel", 0), ref)],
        ["forwarded but refused by the venue", Fig(dec.get("venue-reject", 0), ref)],
        ["forwarded but never delivered", Fig(dec.get("undelivered", 0), ref)],
        ["fills", fills],
        ["filled notional", notional],
        ["surveillance alerts", alerts],
        ["circuit-breaker trips", trips],
        ["kill-switch and reduce-only uses", kills],
    ])


def _limits(doc: Doc, j: _Journal) -> None:
    doc.h(1, "Limits in force and who approved them")
    rows, ref = j.rows("Decisions per limits version",
                       "SELECT limits_version, COUNT(*) AS n, MIN(ts) AS first, MAX(ts) AS last "
                       + j.day('decisions', 'limits_version IS NOT NULL') + " GROUP BY limits_version ORDER BY first")
    changes, cref = j.rows("Limit changes and approvals (any day: a version may have been approved before)",
                           "SELECT q, ts, action, who, why, detail FROM admin "
                           "WHERE action IN ('reload', 'limits approve', 'limits propose') ORDER BY q")
    how: dict[str, str] = {}
    for c in changes:
        d = json.loads(c["detail"] or "{}")
        to = str(d.get("to", "")).partition("+")[0]  # without the temporary overrides in force then
        if c["action"] == "limits approve":
            how[to] = f"four eyes: proposed by {d.get('proposer')}, approved by {c['who']} at {iso(c['ts'])} [{cref}]"
        elif c["action"] == "reload" and to not in how:
            how[to] = f"reloaded by {c['who']} at {iso(c['ts'])}: {c['why']} [{cref}]"
    out = []
    for r in rows:
        version = r["limits_version"]
        base, _, overrides = version.partition("+")
        src = how.get(base, "the configured files, in force since the start (no change in the journal)")
        if overrides:
            src += f"; with temporary override {overrides.replace('+', ', ')} (see Overrides)"
        out.append([f"`{version}`", Fig(r["n"], ref), iso(r["first"]), iso(r["last"]), src])
    doc.table(["limits version", "decisions", "first", "last", "how it came into force"], out)


def _rule_tables(doc: Doc, j: _Journal) -> None:
    rej, rref = j.by("Rejects by code",
                     "SELECT code, COUNT(*) " + j.day('decisions', "decision = 'reject'") + " GROUP BY code")
    warn, wref = j.by("Warnings by code (every warning a decision carried)",
                      "SELECT json_extract(w.value, '$[0]'), COUNT(*) "
                      + j.day("decisions", joined="json_each(decisions.warnings) w") + " GROUP BY 1")
    alerts, aref = j.by("Surveillance alerts by code", "SELECT code, COUNT(*) " + j.day('alerts') + " GROUP BY code")

    def rows(controls: tuple[Control, ...]) -> list[list[Any]]:
        out = []
        for c in controls:
            codes = [x for x in c.codes if x in CATALOGUE]
            if set(codes) <= set(SURVEILLANCE):
                figs = [Fig(sum(alerts.get(x, 0) for x in codes), aref), "", ""]
            else:
                figs = ["", Fig(sum(warn.get(x, 0) for x in codes), wref), Fig(sum(rej.get(x, 0) for x in codes), rref)]
            detail = ", ".join(f"{x} {rej.get(x, 0) or alerts.get(x, 0)}" for x in codes
                               if rej.get(x, 0) or alerts.get(x, 0))
            out.append([c.rule, c.name, " ".join(f"`{x}`" for x in codes), *figs, detail])
        return out

    headers = ["rule", "control", "codes", "alerts", "warnings", "rejects", "rejects or alerts by code"]
    doc.h(1, "MiFID II RTS 6 (Delegated Regulation (EU) 2017/589)")
    doc.p("Every request passes every pre-trade check in the same call before it is sent (Art. 15(2)). "
          "`warnings` counts each time a request came near a limit (its configured warn fraction), rejected "
          "requests included; `rejects` counts the requests refused, each under the first control it failed.")
    doc.table(headers, rows(RTS6))
    doc.h(1, "SEC Rule 15c3-5 (17 CFR 240.15c3-5)")
    doc.p("(c)(1): financial risk management controls; (c)(2): regulatory risk management controls. "
          "Post-trade reports to surveillance ((c)(2)(iv)) are the drop copy and its reconciliation, below.")
    doc.table(headers, rows(SEC))


def _kill_and_breakers(doc: Doc, j: _Journal) -> None:
    doc.h(1, "Kill switches, breakers and halts (RTS 6 Art. 12, 15(3), 16)")
    rows, ref = j.rows("Kill-switch, reduce-only, breaker and halt actions",
                       "SELECT ts, action, scope, who, why, detail "
                       + j.day('admin', "action LIKE 'kill %' OR action LIKE 'reduce_only %' OR action LIKE 'breaker %' OR action LIKE 'halt %'") + " ORDER BY q")
    doc.table(["time", "action", "scope", "who", "why", "detail"],
              [[iso(r["ts"]), f"{r['action']} [{ref}]", r["scope"], r["who"], r["why"], _detail(r["detail"])]
               for r in rows], empty="no kill switch, breaker or halt was used")
    cancels = j.one("Orders the gateway cancelled itself",
                    "SELECT COUNT(*) " + j.day('decisions', "decision = 'gateway-cancel'"))
    doc.p(f"Orders the gateway cancelled on its own (kill switch, self-match, cancel-on-disconnect, storm): "
          f"{cancels.text()} [{cancels.ref}].")


def _alerts(doc: Doc, j: _Journal) -> None:
    doc.h(1, "Surveillance alerts (RTS 6 Art. 13 and 16)")
    rows, ref = j.rows("Surveillance alerts", "SELECT ts, code, account, symbol, detail, orders " + j.day('alerts') + " ORDER BY q")
    doc.table(["time", "code", "account", "symbol", "detail", "orders", "runbook"],
              [[iso(r["ts"]), f"{r['code']} [{ref}]", r["account"], r["symbol"], r["detail"], r["orders"],
                f"`docs/runbooks/{r['code']}.md`"] for r in rows], empty="no surveillance alert")


def _reconciliation(doc: Doc, cfg: GatewayConfig, day: str) -> None:
    doc.h(1, "Drop-copy reconciliation (15c3-5 (c)(2)(iv), RTS 6 Art. 17)")
    path = cfg.state_dir / "recon.sqlite"
    if not path.is_file():
        doc.p(f"No reconciliation store at `{path}`: the drop copy is not configured, so nothing was reconciled.")
        return
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        sql = (f"SELECT source, COUNT(*) FROM fills WHERE trade_date = '{day}' AND occurrence = 0 "
               "GROUP BY source")
        fref = doc.query("Fills received per source", path.name, sql)
        fills = dict(db.execute(sql).fetchall())
        sql = f"SELECT type, status, COUNT(*) FROM breaks WHERE trade_date = '{day}' GROUP BY type, status ORDER BY 1, 2"
        bref = doc.query("Breaks by type and status", path.name, sql)
        breaks = db.execute(sql).fetchall()
    finally:
        db.close()
    doc.table(["figure", "value"], [["fills the gateway forwarded", Fig(fills.get("gateway", 0), fref)],
                                     ["fills the drop copy reported", Fig(fills.get("dropcopy", 0), fref)]]
              + [[f"{t} breaks, {s.lower()}", Fig(n, bref)] for t, s, n in breaks])
    if not breaks:
        doc.p(f"No break: every fill of both sources matched [{bref}].")
    doc.p(f"The full reconciliation: `fixgw reconcile --date {day}` (reports under `{cfg.state_dir / 'reports'}`).")


def _utilisation(doc: Doc, cfg: GatewayConfig, day: str, png: Path | None) -> None:
    from gateway.control import utilisation
    from gateway.control.what_if import day_log
    from gateway.events.log import EventLog
    from gateway.service import client_sessions, load_risk

    doc.h(1, "Limit utilisation through the day (RTS 6 Art. 17, 15c3-5 (c)(1)(i))")
    risk_cfg = load_risk(cfg)
    if risk_cfg is None:
        doc.p("No `[risk]` section: the gateway ran no limits.")
        return
    u = utilisation.through_the_day(EventLog.read(day_log(cfg, day)), risk_cfg, client_sessions(cfg),
                                    max(cfg.gateway.max_open_orders, 1))
    doc.p(f"The day's event log ({u.events} events) replayed through the risk stage under limits "
          f"`{u.limits_version}`, each account's value over limit sampled through the day (the journal's rows are "
          f"this log's projection).")
    if png is not None:
        doc.image(utilisation.chart(u, png, f"Limit utilisation, trading day {day}"), "limit utilisation chart")
    doc.table(["account", "limit", "peak (% of limit)", "at"],
              [[a, lim, f"{100 * p:.1f}", iso(ts)] for a, lim, p, ts in u.peaks()],
              empty="no account used any of its limits")


def _overrides_and_actions(doc: Doc, j: _Journal) -> None:
    doc.h(1, "Temporary overrides")
    rows, ref = j.rows("Limit overrides set and ended", "SELECT ts, action, scope, who, why, detail "
                                                         + j.day('admin', "action LIKE 'override %'") + " ORDER BY q")
    out = []
    for r in rows:
        d = json.loads(r["detail"] or "{}")
        out.append([iso(r["ts"]), f"{r['action']} [{ref}]", r["scope"], f"{d.get('limit')} = {d.get('value'):g}",
                    iso(d["until"]) if d.get("until") else "", r["who"], r["why"]])
    doc.table(["time", "action", "scope", "limit", "until", "who", "why"], out, empty="no override")
    doc.h(1, "Every operator action")
    rows, ref = j.rows("Operator and gateway actions", "SELECT ts, action, scope, who, why " + j.day('admin') + " ORDER BY q")
    doc.table(["time", "action", "scope", "who", "why"],
              [[iso(r["ts"]), f"{r['action']} [{ref}]", r["scope"], r["who"], r["why"]] for r in rows],
              empty="no operator action")


def _failed_closed(doc: Doc, j: _Journal) -> None:
    doc.h(1, "Failed closed")
    doc.p("Requests refused because a check could not be evaluated or a path was missing, rather than let "
          "through, and requests forwarded that never took effect.")
    rows, ref = j.rows("Fail-closed rejects and undelivered requests",
                       "SELECT decision, code, COUNT(*) AS n "
                       + j.day('decisions', f"(decision = 'reject' AND code IN {_codes_sql(FAILED_CLOSED)}) "
                                            "OR decision = 'undelivered'")
                       + " GROUP BY decision, code ORDER BY decision, code")
    doc.table(["decision", "code", "requests", "meaning"],
              [[r["decision"], r["code"], Fig(r["n"], ref), CATALOGUE[r["code"]].meaning if r["code"] in CATALOGUE
                else ""] for r in rows], empty="nothing failed closed")


def _detail(text: str | None) -> str:
    if not text:
        return ""
    d = json.loads(text)
    return ", ".join(f"{k} {v}" for k, v in d.items()) if isinstance(d, dict) else str(d)


def write(doc: Doc, out_dir: Path, day: str) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    md, page = out_dir / f"controls-{day}.md", out_dir / f"controls-{day}.html"
    md.write_text(doc.markdown())
    page.write_text(doc.html())
    return [md, page]


def run(cfg: GatewayConfig, day: str, out_dir: Path, generated_ns: int | None = None) -> list[Path]:
    """`fixgw report controls`: the three files of trading day `day` under `out_dir`."""
    out_dir.mkdir(parents=True, exist_ok=True)
    png = out_dir / f"controls-{day}-utilisation.png"
    doc = build(cfg, day, generated_ns, png)
    return write(doc, out_dir, day) + [png]
