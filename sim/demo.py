"""`fixgw demo`: gateway, venue simulator and two scripted OMS clients on loopback, in one process.

Each scripted step says what the client should see; the summary prints expected against seen, and the exit
status is 0 only when every step went as scripted.
"""

from __future__ import annotations

import random
import socket
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from config.settings import GatewayConfig, dump_config, load_config
from gateway.events.journal_query import query
from gateway.fix import messages as fm
from sim.oms_client import Fields, OmsClient
from gateway.service import Gateway
from sim.venue import SimConfig, VenueSim, load_sim_config

DEMO_DIR = Path(__file__).resolve().parent.parent / "config" / "demo"


_handed_out: set[int] = set()


def _ephemeral_low() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_port() -> int:
    """A free port on 127.0.0.1 for a listener, below the kernel's ephemeral range and never the same twice in
    a process. A port the kernel hands out for bind(0) is an ephemeral one, and an outgoing connection (a
    session reconnecting) could take it between this check and the listener's bind."""
    top = min(_ephemeral_low(), 32768)
    for _ in range(1000):
        port = random.randrange(20000, top)
        if port in _handed_out:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        _handed_out.add(port)
        return port
    raise RuntimeError(f"no free port between 20000 and {top} on 127.0.0.1")


def demo_configs(state: Path, gateway_toml: Path | None = None, sim_toml: Path | None = None
                 ) -> tuple[GatewayConfig, SimConfig]:
    """The embedded demo configuration on free ports, with its state under `state`."""
    cfg = load_config(gateway_toml or DEMO_DIR / "gateway.toml")
    sim = load_sim_config(sim_toml or DEMO_DIR / "venue_sim.toml")
    port, vport, dport, mport = free_port(), free_port(), free_port(), free_port()
    cfg = cfg.model_copy(update={
        "gateway": cfg.gateway.model_copy(update={"state_dir": state / "gateway"}),
        "acceptor": cfg.acceptor.model_copy(update={"port": port}),
        "venue": cfg.venue.model_copy(update={"port": vport}),
        "dropcopy": cfg.dropcopy.model_copy(update={"port": dport}) if cfg.dropcopy else None,
        "marketdata": cfg.marketdata.model_copy(update={"port": mport}) if cfg.marketdata else None,
    })
    sim = sim.model_copy(update={"port": vport, "dropcopy_port": dport, "marketdata_port": mport,
                                 "state_dir": state / "venue-sim"})
    return cfg, sim


@dataclass
class Step:
    name: str
    expected: str
    seen: str = ""
    ok: bool = False


@dataclass
class Script:
    steps: list[Step] = field(default_factory=list)

    def check(self, name: str, expected: str, fn: Callable[[], tuple[bool, str]]) -> None:
        step = Step(name, expected)
        try:
            step.ok, step.seen = fn()
        except TimeoutError as e:
            step.seen = f"timeout: {e}"
        self.steps.append(step)

    def summary(self) -> str:
        w = max(len(s.name) for s in self.steps)
        lines = [f"{'step':<{w}}  result  expected -> seen"]
        for s in self.steps:
            lines.append(f"{s.name:<{w}}  {'PASS' if s.ok else 'FAIL':<6}  {s.expected} -> {s.seen}")
        passed = sum(s.ok for s in self.steps)
        lines.append(f"{passed} passed, {len(self.steps) - passed} failed")
        return "\n".join(lines)


def _status(f: Fields) -> str:
    s = f"35={f.get(35)} 150={f.get(150, '-')} 39={f.get(39, '-')}"
    if f.get(32):
        s += f" fill {f[32]}@{f.get(31)}"
    if f.get(58):
        s += f" '{f[58]}'"
    return s


def run_demo(state: Path | None = None, out: Callable[[str], None] = print) -> int:
    tmp = None
    if state is None:
        tmp = tempfile.TemporaryDirectory(prefix="fixgw-demo-")
        state = Path(tmp.name)
    cfg, sim_cfg = demo_configs(state)
    if tmp is None:  # kept: `fixgw journal|what-if|surveillance|report --config DIR/gateway.toml` read the day
        (state / "gateway.toml").write_text(dump_config(cfg))
    sim = VenueSim(sim_cfg)
    gw = Gateway(cfg)
    oms1 = OmsClient("OMS1", "FIXGW", cfg.acceptor.port, state / "oms1")
    oms2 = OmsClient("OMS2", "FIXGW", cfg.acceptor.port, state / "oms2")
    script = Script()
    t0 = time.monotonic()
    try:
        sim.start()
        gw.start()
        oms1.start()
        oms2.start()
        script.check("sessions up", "OMS1, OMS2, venue, drop copy and market data logged on",
                     lambda: (oms1.wait_logon() and oms2.wait_logon() and gw.venue_logged_on.wait(15)
                              and gw.dropcopy_logged_on.wait(15) and gw.marketdata_logged_on.wait(15),
                              f"OMS1={oms1.logged_on} OMS2={oms2.logged_on} venue={gw.router.venue_up} "
                              f"dropcopy={gw.dropcopy_logged_on.is_set()} "
                              f"marketdata={gw.marketdata_logged_on.is_set()}"))
        run_script(script, oms1, oms2)
        run_risk_script(script, oms1, gw)
        run_controls_script(script, oms1, gw, sim)
        run_compliance_script(script, oms1, gw)
        recon = reconcile(script, gw, sim, state if tmp is None else None)
        report = controls_report(script, gw, state / "gateway" / "reports")
        decisions = decision_table(gw)
    finally:
        for c in (oms1, oms2):
            c.stop()
        gw.stop()
        sim.stop()
    out("fixgw demo: gateway + venue simulator + scripted OMS clients on 127.0.0.1")
    out(script.summary())
    out("")
    out("Decisions in the audit journal:")
    out(decisions)
    out("")
    out(recon)
    out("")
    out(report if tmp is None else "Controls report (RTS 6 / 15c3-5) written and checked; --state-dir keeps it")
    out(f"finished in {time.monotonic() - t0:.1f}s; state in {state if tmp is None else '(temporary folder)'}")
    if tmp is not None:
        tmp.cleanup()
    return 0 if all(s.ok for s in script.steps) else 1


def run_script(script: Script, oms1: OmsClient, oms2: OmsClient) -> None:
    def terminal(client: OmsClient, cl: str, exec_type: str, status: str | None = None) -> Callable[[], tuple[bool, str]]:
        def fn() -> tuple[bool, str]:
            f = client.wait_for(lambda m: m.get(11) == cl and m.get(150) == exec_type and
                                (status is None or m.get(39) == status))
            return True, _status(f)
        return fn

    oms1.new_order("A1", "ACC1", "AAPL", "1", 100, 190.0)
    script.check("new AAPL buy 100 @190", "ack then full fill (39=2)", terminal(oms1, "A1", "F", "2"))

    oms1.new_order("M1", "ACC1", "MSFT", "2", 200, 410.0)
    script.check("new MSFT sell 200 @410", "partial fill 100 (39=1)", terminal(oms1, "M1", "F", "1"))

    oms1.new_order("I1", "ACC2", "JPM", "1", 300, 200.0)
    script.check("new JPM buy 300 @200", "acknowledged, resting (150=0)", terminal(oms1, "I1", "0"))
    oms1.replace("I2", "I1", "JPM", "1", 400, 201.0, "ACC2")
    script.check("replace JPM -> 400 @201", "replaced (150=5)", terminal(oms1, "I2", "5"))
    oms1.cancel("I3", "I2", "JPM", "1", "ACC2")
    script.check("cancel JPM", "canceled (150=4)", terminal(oms1, "I3", "4"))

    oms1.new_order("T1", "ACC2", "XOM", "1", 10, 110.0)
    script.check("new XOM on a halted name", "venue reject (150=8)", terminal(oms1, "T1", "8"))

    oms2.new_order("A1", "ACC3", "AAPL", "2", 50, 191.0)
    script.check("OMS2 reuses ClOrdID A1", "its own fill, on OMS2 only", lambda: _same_id_check(oms1, oms2))

    oms1.new_order("X1", "ACC3", "AAPL", "1", 10, 190.0)
    script.check("OMS1 trades ACC3", "gateway reject ACCOUNT_NOT_PERMITTED",
                 lambda: _text_check(oms1, "X1", "ACCOUNT_NOT_PERMITTED"))

    m = fm.new_message("H")  # OrderStatusRequest: not supported by the gateway
    for tag, val in ((fm.CL_ORD_ID, "A1"), (fm.SYMBOL, "AAPL"), (fm.SIDE, "1")):
        m.setField(tag, val)
    oms1.send(m)
    script.check("unsupported message 35=H", "BusinessMessageReject (35=j, 380=3)",
                 lambda: (lambda f: (f.get(380) == "3", f"35={f.get(35)} 380={f.get(380)} '{f.get(58, '')}'"))(
                     oms1.wait_for(lambda f: f.get(35) == "j")))


def run_risk_script(script: Script, oms1: OmsClient, gw: Gateway) -> None:
    """Accepted, warned and rejected orders with their reason codes, and the kill switch."""
    def rejected(cl: str, code: str) -> Callable[[], tuple[bool, str]]:
        return lambda: _text_check(oms1, cl, code)

    oms1.new_order("W1", "ACC1", "JPM", "1", 4_500, 200.0)
    script.check("JPM buy 4500 @200 (900k)", "accepted with warning NOTIONAL_MAX (80% of 1M)",
                 lambda: _warn_check(oms1, gw, "W1", "NOTIONAL_MAX"))
    for cl, args, code, what in (
            ("R1", ("ACC1", "AAPL", "1", 20_000, 190.0), "QTY_MAX", "AAPL buy 20000"),
            ("R2", ("ACC1", "AAPL", "1", 100, 250.0), "PRICE_COLLAR", "AAPL buy @250 (ref 190)"),
            ("R3", ("ACC1", "GS", "1", 10, 450.0), "RESTRICTED_INSTRUMENT", "GS (restricted list)"),
            ("R4", ("ACC2", "JPM", "1", 4_900, 200.0), "VAR_LIMIT", "ACC2 JPM 980k (VaR)")):
        oms1.new_order(cl, *args)
        script.check(what, f"reject {code}", rejected(cl, code))
    res = gw.set_switch("kill", "account", "ACC1", True, "demo", "show the kill switch")
    script.check("kill switch on ACC1", "its 2 resting orders (M1 rest, W1) cancelled, 150=4",
                 lambda: (res["cancelled"] == 2 and all(oms1.wait_for(lambda m, cl=cl: m.get(11) == cl and
                                                                      m.get(150) == "4") for cl in ("M1", "W1")),
                          f"{res['cancelled']} order(s) cancelled at the venue, clients told"))
    oms1.new_order("K1", "ACC1", "AAPL", "1", 10, 190.0)
    script.check("ACC1 order under the kill switch", "reject KILL_SWITCH_ACCOUNT",
                 rejected("K1", "KILL_SWITCH_ACCOUNT"))
    gw.set_switch("kill", "account", "ACC1", False, "demo", "end of the drill")


STRATEGY_TAG = 7940  # the demo config's [controls] strategy_tag


def run_controls_script(script: Script, oms1: OmsClient, gw: Gateway, sim: VenueSim) -> None:
    """The controls beyond limits: self-match prevention, a circuit breaker, a stale market-data price."""
    def filled(cl: str) -> Callable[[], tuple[bool, str]]:
        return lambda: (True, _status(oms1.wait_for(lambda m: m.get(11) == cl and m.get(150) == "F")))

    oms1.new_order("SM1", "ACC2", "JPM", "1", 100, 199.0)
    script.check("ACC2 JPM buy 100 @199", "acknowledged, resting (150=0)",
                 lambda: (True, _status(oms1.wait_for(lambda m: m.get(11) == "SM1" and m.get(150) == "0"))))
    oms1.new_order("SM2", "ACC2", "JPM", "2", 100, 198.0)
    script.check("ACC2 JPM sell @198 into its own bid", "reject SELF_MATCH", lambda: _text_check(oms1, "SM2",
                                                                                              "SELF_MATCH"))
    oms1.cancel("SM3", "SM1", "JPM", "1", "ACC2")

    for n in range(6):  # the demo's breaker trips above 5 fills per instrument and side in a minute
        oms1.new_order(f"L{n}", "ACC2", "AAPL", "1", 1, 190.0, extra={STRATEGY_TAG: "LOOP"})
        oms1.wait_for(lambda m, cl=f"L{n}": m.get(11) == cl and m.get(150) == "F")
    oms1.new_order("L6", "ACC2", "AAPL", "1", 1, 190.0, extra={STRATEGY_TAG: "LOOP"})
    script.check("strategy LOOP fills 6 times in a minute", "breaker REPEATED_EXECUTIONS trips, rejects its next",
                 lambda: _text_check(oms1, "L6", "REPEATED_EXECUTIONS"))
    tripped = gw.router.breakers()
    gw.router.clear_breaker("REPEATED_EXECUTIONS", "strategy:LOOP", "demo", "the strategy's owner re-enabled it")
    oms1.new_order("L7", "ACC2", "AAPL", "1", 1, 190.0, extra={STRATEGY_TAG: "LOOP"})
    script.check("operator clears the breaker", "LOOP trades again (fill)",
                 lambda: (lambda ok, seen: (ok and len(tripped) == 1, f"tripped {tripped[0]['scope']}; {seen}"))(
                     *filled("L7")()))

    sim.pause_market_data(True)
    max_age = gw.cfg.max_price_age_s or 0.0
    stale = _wait(lambda: gw.router.read(lambda ledger, risk: (risk.controls.price_age_s("NVDA", risk.clock())
                                                               or 0.0) > max_age), max_age + 10)
    oms1.new_order("ST1", "ACC1", "NVDA", "1", 10, 120.0)
    script.check(f"market data paused > {max_age:g} s", "reject STALE_REFERENCE_PRICE",
                 lambda: (lambda ok, seen: (ok and stale, seen))(*_text_check(oms1, "ST1", "STALE_REFERENCE_PRICE")))
    sim.pause_market_data(False)
    _wait(lambda: gw.router.read(lambda ledger, risk: (risk.controls.price_age_s("NVDA", risk.clock())
                                                       or max_age + 1) < max_age), 10)
    oms1.new_order("ST2", "ACC1", "NVDA", "1", 10, 120.0)
    script.check("market data flowing again", "NVDA order filled", filled("ST2"))


def run_compliance_script(script: Script, oms1: OmsClient, gw: Gateway) -> None:
    """Governance and surveillance: a temporary limit override, and a wash trade the live surveillance flags."""
    until = time.time_ns() + 3600 * 10**9
    gw.router.set_override("global", "qty_max", 20_000, until, "demo-risk", "a client's block trade, for an hour")
    oms1.new_order("OV1", "ACC1", "BAC", "1", 15_000, 35.0)

    def overridden() -> tuple[bool, str]:
        f = oms1.wait_for(lambda m: m.get(11) == "OV1" and m.get(39) == "2")
        gw.journal.flush()
        row = next((r for r in query(gw.journal.path, "decisions") if r["cl_ord_id"] == "OV1"), None)
        version = row["limits_version"] if row else ""
        return "+OVR-" in version, f"{_status(f)}; journal: limits {version}"
    script.check("BAC buy 15000 under an override of qty_max to 20000", "filled; its decision names the override",
                 overridden)
    def alert() -> tuple[bool, str]:
        oms1.new_order("WT1", "ACC2", "CVX", "1", 100, 155.0)
        oms1.wait_for(lambda m: m.get(11) == "WT1" and m.get(39) == "2")
        oms1.new_order("WT2", "ACC2", "CVX", "2", 100, 155.0)
        oms1.wait_for(lambda m: m.get(11) == "WT2" and m.get(39) == "2")
        if gw.surveillance is not None:
            gw.surveillance.flush()
        gw.journal.flush()
        rows = query(gw.journal.path, "alerts")
        return ([r["code"] for r in rows] == ["WASH_TRADE"],
                "; ".join(f"{r['code']} {r['account']} {r['symbol']} orders {r['orders']}" for r in rows) or "none")
    script.check("ACC2 sells the CVX it just bought", "surveillance alert WASH_TRADE, journaled", alert)


def controls_report(script: Script, gw: Gateway, out_dir: Path) -> str:
    """The day's controls report (gateway.control.controls_report), written from the running gateway's journal."""
    from gateway.control import controls_report as cr

    gw.journal.flush()
    day = gw.trading_day
    paths = cr.run(gw.cfg, day, out_dir)
    md = paths[0].read_text()
    checked = len([r for r in query(gw.journal.path, "decisions") if r["decision"] in ("accept", "warn", "reject")])
    want = f"| requests checked | {checked} ["
    script.check("controls report of the day", f"RTS 6 / 15c3-5 report: {checked} requests checked, an override, "
                                                "an alert",
                 lambda: (want in md and "| override set [" in md and "| WASH_TRADE [" in md,
                          f"{len(md.splitlines())} lines, {sum(1 for line in md.splitlines() if line.startswith('| Art.') or line.startswith('| (c)'))} "
                          "rule rows"))
    return "Controls report of " + day + ":\n" + "\n".join(f"  report: {p}" for p in paths)


def _wait(pred: Callable[[], bool], timeout: float) -> bool:
    """For state that changes with time alone (a price ageing): poll briefly."""
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def _warn_check(client: OmsClient, gw: Gateway, cl: str, code: str) -> tuple[bool, str]:
    f = client.wait_for(lambda m: m.get(11) == cl and m.get(150) == "0")
    gw.journal.flush()
    rows = [r for r in query(gw.journal.path, "decisions") if r["cl_ord_id"] == cl]
    row = rows[0] if rows else None
    return (row is not None and (row["decision"], row["code"]) == ("warn", code),
            f"{_status(f)}; journal: {row['decision']} {row['code']} {row['value']:g}/{row['limit_value']:g}"
            if row else "no journal row")


def reconcile(script: Script, gw: Gateway, sim: VenueSim, keep: Path | None) -> str:
    """Wait out the grace period, then summarise the live reconciliation of the day."""
    expected_dc = len(sim.fills)
    gw.recon_feed.wait_seen("dropcopy", expected_dc, timeout=15)
    time.sleep(gw.cfg.reconciliation.grace_s + 0.2)  # breaks are only breaks once the grace period is over
    gw.recon_feed.tick()
    day = time.strftime("%Y%m%d", time.gmtime())
    report = gw.recon.report(day, time.time_ns())
    opened = {k: v for k, v in report.open_by_type.items() if v}
    script.check("drop-copy reconciliation", "all fills matched but the bypass fill: UNKNOWN_TO_GATEWAY 1",
                 lambda: (opened == {"UNKNOWN_TO_GATEWAY": 1} and report.matched == report.gateway_messages,
                          f"{report.matched} matched, open breaks {opened or 0}"))
    lines = [f"Reconciliation of {day}: {report.gateway_messages} gateway fills, {report.dropcopy_messages} "
             f"drop-copy fills, {report.matched} matched, open breaks: {opened or 'none'}"]
    for b in report.breaks:
        lines.append(f"  {b.type.value} {b.status.value}: {b.account} {b.symbol} exec {b.exec_id} - {b.note}")
    if keep is not None:
        paths = gw.write_recon_reports(day)
        lines += [f"  report: {p}" for p in paths]
    return "\n".join(lines)


def decision_table(gw: Gateway) -> str:
    gw.journal.flush()
    rows = query(gw.journal.path, "decisions")
    out = [f"{'req':<4}{'session':<14}{'ClOrdID':<9}{'acct':<6}{'symbol':<7}{'qty':>7} {'price':>8}  decision"]
    for r in rows:
        kind, sess, cl, acc, sym, qty, px, decision, code = (r[k] for k in (
            "kind", "session", "cl_ord_id", "account", "symbol", "qty", "price", "decision", "code"))
        out.append(f"{kind:<4}{(sess or '')[7:]:<14}{cl:<9}{acc or '':<6}{sym or '':<7}"
                   f"{'' if qty is None else f'{qty:g}':>7} {'' if px is None else f'{px:g}':>8}  "
                   f"{decision}{' ' + code if code else ''}")
    return "\n".join(out)


def _same_id_check(oms1: OmsClient, oms2: OmsClient) -> tuple[bool, str]:
    f = oms2.wait_for(lambda m: m.get(11) == "A1" and m.get(150) == "F" and m.get(39) == "2")
    oms1_a1 = [m for m in oms1.reports("A1") if m.get(54) == "2"]
    return f.get(54) == "2" and not oms1_a1, f"OMS2 {_status(f)}; OMS1 got {len(oms1_a1)} of OMS2's reports"


def _text_check(client: OmsClient, cl: str, code: str) -> tuple[bool, str]:
    f = client.wait_for(lambda m: m.get(11) == cl and m.get(150) == "8")
    return f.get(58, "").startswith(code), _status(f)
