"""`fixgw`: the gateway's command line."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from config.errors import ConfigError


def _checkpoint(args: argparse.Namespace) -> int:
    """What the daemon runs in a child process (gateway.control.checkpoint), by hand: safe while it runs."""
    import json

    from config.settings import load_config
    from gateway.control import checkpoint

    print(json.dumps(checkpoint.make_and_tell(load_config(args.config))))
    return 0


def _check_config(args: argparse.Namespace) -> int:
    from config.risk_models import load_risk_config
    from config.settings import load_config
    from gateway.control import limits as limit_changes

    cfg = load_config(args.config)
    r = cfg.risk  # the configured files are what a reload reads: they are checked even under an approved version
    risk = load_risk_config(r.instruments, r.accounts, r.limits, r.scenarios, r.locates, r.kyc) if r else None
    limits = f", limits {risk.limits_version}" if risk is not None else ", no risk checks"
    approved = limit_changes.current_version(cfg) if r else None
    if cfg.console is not None:  # a broken users file would fail the start: say so now
        from gateway.control.console.auth import load_users

        users = load_users(cfg.console.users_file)
        limits += (f"; console on {cfg.console.host}:{cfg.console.port} for {len(users)} user(s) "
                   f"({sum(u.may_act for u in users.values())} operator(s))")
    if approved is not None:
        limits += (f"; in force: approved version {approved} (limits "
                   f"{limit_changes.load_version(cfg, approved).limits_version})")
    print(f"{args.config}: OK ({len(cfg.acceptor.clients)} client sessions, venue "
          f"{cfg.venue.host}:{cfg.venue.port}, state in {cfg.state_dir}{limits})")
    return 0


def _console(args: argparse.Namespace) -> int:
    """`fixgw console add-user`: add or replace a user of the console's users file, with a password hash."""
    import getpass
    import os
    import tempfile
    import tomllib

    from gateway.control.console.auth import ROLES, hash_password

    path = Path(args.users)
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = getpass.getpass(f"password for {args.name}: ")
        if getpass.getpass("again: ") != password:
            print("fixgw console: the two passwords differ", file=sys.stderr)
            return 2
    try:
        hashed = hash_password(password)
    except ValueError as e:
        print(f"fixgw console: {e}", file=sys.stderr)
        return 2
    if args.role not in ROLES:
        print(f"fixgw console: role must be one of {', '.join(ROLES)}", file=sys.stderr)
        return 2
    users = tomllib.loads(path.read_text()).get("users", {}) if path.exists() else {}
    users[args.name] = {"role": args.role, "password_hash": hashed}
    text = "# fixgw console users: `fixgw console add-user` writes this file (Argon2id password hashes)\n"
    text += "".join(f'\n[users.{json.dumps(n)}]\nrole = "{u["role"]}"\npassword_hash = "{u["password_hash"]}"\n'
                    for n, u in sorted(users.items()))
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".users-")
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.chmod(tmp, 0o640)
    os.replace(tmp, path)
    print(f"{path}: {args.name} is a console {args.role}")
    return 0


def _run(args: argparse.Namespace) -> int:
    from config.settings import load_config
    from gateway.control import daemon
    from gateway.control import logs

    cfg = load_config(args.config)
    logs.setup(cfg.gateway.log_level)
    return daemon.run(cfg)


def _venue_sim(args: argparse.Namespace) -> int:
    import signal
    import threading

    from gateway.control import logs
    from sim.venue import VenueSim, load_sim_config

    logs.setup("INFO")
    sim = VenueSim(load_sim_config(args.config))
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    sim.start()
    stop.wait()
    sim.stop()
    return 0


def _demo(args: argparse.Namespace) -> int:
    from gateway.control import logs
    from sim.demo import run_demo

    # The demo provokes rejects, a kill switch and a reconciliation break on purpose: its summary reports
    # them, so only the unexpected (critical) reaches the log.
    logs.setup("CRITICAL")
    return run_demo(Path(args.state_dir) if args.state_dir else None)


def _journal(args: argparse.Namespace) -> int:
    from gateway.events.journal_query import query, render

    if args.config:
        from config.settings import load_config

        path = load_config(args.config).state_dir / "journal.sqlite"
    else:
        path = Path(args.db)
    try:
        rows = query(path, args.table, args.account, args.code, args.since, args.until, args.limit, args.date)
    except (ValueError, FileNotFoundError) as e:
        print(f"fixgw journal: {e}", file=sys.stderr)
        return 2
    print(render(rows, args.table, args.format))
    return 0


def _admin(args: argparse.Namespace) -> int:
    import getpass
    import json

    from gateway.control.admin import request

    if args.config:
        from config.settings import load_config

        path = load_config(args.config).admin_socket
    else:
        path = Path(args.socket)
    req: dict[str, object] = {"cmd": args.action.replace("-", "_")}
    if args.action in ("kill", "reduce-only"):
        req.update(state=args.state, scope=args.scope)
    if args.action == "halt":
        req.update(state=args.state, scope=f"instrument:{args.symbol}")
    if args.action == "clear-breaker":
        req.update(code=args.code, scope=args.scope)
    if args.action == "override":
        req.update(scope=args.scope, limit=args.limit, until=args.until)
    if args.action in ("logout", "logon", "seq-reset"):
        req["session"] = args.session
    if args.action == "seq-reset":
        req.update(next_sender=args.next_sender, next_target=args.next_target)
    if args.action not in ("status", "breakers"):
        req.update(who=args.who or getpass.getuser(), why=args.why)
    try:
        answer = request(path, req, timeout=120.0 if args.action == "rollover" else 30.0)
    except OSError as e:
        print(f"fixgw admin: cannot reach the gateway at {path}: {e.strerror or e}", file=sys.stderr)
        return 2
    print(json.dumps(answer, indent=1))
    return 0 if answer.get("ok") else 1


def _seq_num(text: str) -> int:
    """A MsgSeqNum (34) the session is to use next: 1 or more (0 is not a sequence number in FIX)."""
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a sequence number (an integer, 1 or more)")
    return n


def _trade_date(text: str) -> str:
    """YYYYMMDD, a real calendar day: a mistyped date must not produce an empty, clean-looking report."""
    import datetime as _dt

    try:
        if len(text) == 8 and text.isdigit():
            _dt.datetime.strptime(text, "%Y%m%d")
            return text
    except ValueError:
        pass
    raise argparse.ArgumentTypeError(f"{text!r} is not a trading day in the form YYYYMMDD (e.g. 20261202)")


def _limits(args: argparse.Namespace) -> int:
    import getpass
    import json

    from config.settings import load_config
    from gateway.control import limits
    from gateway.control.admin import request

    if args.action == "history":
        rows = limits.history(load_config(args.config))
        if args.format == "json":
            print(json.dumps(rows, indent=1))
            return 0
        for r in rows:
            print(f"{r['version']}  {r['status']:<10}  proposed by {r['proposer']} at "
                  f"{_time_text(r['proposed_at'])} ({r['why']})"
                  + (f"; approved by {r['approver']} at {_time_text(r['approved_at'])}" if r.get("approver") else ""))
            print("\n".join("    " + line for line in r["diff"].splitlines()) or "    (no change to limits.toml)")
        return 0
    path = load_config(args.config).admin_socket if args.config else Path(args.socket)
    req: dict[str, object] = {"cmd": f"limits_{args.action}", "who": args.who or getpass.getuser(), "why": args.why}
    if args.action == "propose":
        req["folder"] = str(Path(args.folder).resolve())
    else:
        req["version"] = args.version
    try:
        answer = request(path, req, timeout=300.0)
    except OSError as e:
        print(f"fixgw limits: cannot reach the gateway at {path}: {e.strerror or e}", file=sys.stderr)
        return 2
    what_if_text = answer.pop("what_if", None)
    print(json.dumps(answer, indent=1))
    if what_if_text:
        print(what_if_text)
    return 0 if answer.get("ok") else 1


def _time_text(t: float) -> str:
    import datetime as _dt

    return _dt.datetime.fromtimestamp(t, _dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def _what_if(args: argparse.Namespace) -> int:
    from config.settings import load_config
    from gateway.control import what_if

    try:
        result = what_if.run(load_config(args.config), args.date, Path(args.limits))
    except ValueError as e:
        print(f"fixgw what-if: {e}", file=sys.stderr)
        return 2
    text = what_if.render(result, args.format)
    if args.out:
        Path(args.out).write_text(text)
    else:
        sys.stdout.write(text)
    return 0


def _surveillance(args: argparse.Namespace) -> int:
    from config.settings import load_config
    from gateway.control.what_if import day_log
    from gateway.events import surveillance
    from gateway.events.log import EventLog

    cfg = load_config(args.config)
    try:
        alerts = surveillance.scan(EventLog.read(day_log(cfg, args.date)), cfg.surveillance, surveillance.owners_of(cfg))
    except ValueError as e:
        print(f"fixgw surveillance: {e}", file=sys.stderr)
        return 2
    sys.stdout.write(surveillance.render(alerts, args.date, args.format))
    return 1 if alerts else 0


def _report(args: argparse.Namespace) -> int:
    from config.settings import load_config
    from gateway.control import controls_report

    cfg = load_config(args.config)
    try:
        paths = controls_report.run(cfg, args.date, Path(args.out))
    except (ValueError, FileNotFoundError) as e:
        print(f"fixgw report controls: {e}", file=sys.stderr)
        return 2
    for path in paths:
        print(path)
    return 0


def _reconcile(args: argparse.Namespace) -> int:
    import time as _time

    from gateway.events.journal_query import parse_time
    from gateway.recon import ReconService, ReconStore, reconcile_logs, write_reports
    from gateway.recon.store import StoreVersionError

    formats = tuple(f.strip() for f in args.format.split(",") if f.strip())
    as_of = parse_time(args.as_of) if args.as_of else None
    problems = []
    if args.config:
        from config.settings import load_config

        from gateway.recon.feed import reconciliation_off_reason

        cfg = load_config(args.config)
        off = reconciliation_off_reason(cfg)
        if off is not None:
            # Not a clean day either: without a drop copy nothing was reconciled, so no report is written
            # that could be read as one.
            print(f"reconciliation is off: {off} in {args.config}")
            return 0
        store_path = cfg.state_dir / "recon.sqlite"
        if not store_path.is_file():
            print(f"fixgw reconcile: no reconciliation store at {store_path}", file=sys.stderr)
            return 2
        grace = int((args.grace_seconds or cfg.reconciliation.grace_s) * 1e9)
        try:  # only the gateway changes the store's schema (it may be running older code)
            store = ReconStore(store_path, migrate=False)
        except StoreVersionError as e:
            print(f"fixgw reconcile: {e}", file=sys.stderr)
            return 2
        service = ReconService(store, grace, price_tolerance=cfg.reconciliation.price_tolerance)
        report = service.report(args.date, as_of if as_of is not None else _time.time_ns())
        out = Path(args.out) if args.out else cfg.report_dir
    else:
        missing = [n for n in ("gateway_log", "dropcopy_log", "venue_comp_id", "dropcopy_comp_id")
                   if not getattr(args, n)]
        if missing:
            print("fixgw reconcile: offline mode needs " + ", ".join("--" + m.replace("_", "-") for m in missing),
                  file=sys.stderr)
            return 2
        for log_path in (args.gateway_log, args.dropcopy_log):
            if not Path(log_path).is_file():
                print(f"fixgw reconcile: {log_path}: no such file (a QuickFIX message log was expected)",
                      file=sys.stderr)
                return 2
        grace = int((args.grace_seconds or 5.0) * 1e9)
        report, problems = reconcile_logs(args.gateway_log, args.dropcopy_log, args.venue_comp_id,
                                          args.dropcopy_comp_id, args.date, grace, as_of)
        out = Path(args.out or ".")
    try:
        paths = write_reports(report, out, formats)
    except (OSError, ValueError) as e:
        print(f"fixgw reconcile: cannot write the reports to {out}: {e}", file=sys.stderr)
        return 2
    for p in problems:
        print(f"fixgw reconcile: {p.path}:{p.line_no}: {p.reason}", file=sys.stderr)
    print(f"trading day {report.trade_date}: {report.gateway_messages} gateway fills, {report.dropcopy_messages} "
          f"drop-copy fills, {report.matched} matched, {report.open_breaks} open breaks "
          f"{dict(report.open_by_type) or ''}".rstrip())
    for path in paths:
        print(f"  wrote {path}")
    if problems:
        return 2
    return 1 if report.open_breaks else 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="fixgw", description="Institutional FIX risk gateway")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("run", help="run the gateway in the foreground")
    s.add_argument("--config", required=True, help="gateway TOML file")
    s.set_defaults(fn=_run)

    s = sub.add_parser("checkpoint", help="bring the state folder's checkpoint up to the end of its event log")
    s.add_argument("--config", required=True, help="gateway TOML file")
    s.set_defaults(fn=_checkpoint)

    s = sub.add_parser("check-config", help="validate a configuration file without starting anything")
    s.add_argument("config")
    s.set_defaults(fn=_check_config)

    s = sub.add_parser("console", help="the operator console's users")
    acts = s.add_subparsers(dest="action", required=True)
    a = acts.add_parser("add-user", help="add or replace a user (asks for the password, stores its Argon2 hash)")
    a.add_argument("--users", required=True, help="the users file ([console] users_file)")
    a.add_argument("--name", required=True)
    a.add_argument("--role", required=True, choices=("viewer", "operator"))
    a.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    s.set_defaults(fn=_console)

    s = sub.add_parser("venue-sim", help="run the venue simulator")
    s.add_argument("--config", required=True, help="venue simulator TOML file")
    s.set_defaults(fn=_venue_sim)

    s = sub.add_parser("demo", help="gateway + venue simulator + scripted clients on loopback")
    s.add_argument("--state-dir", help="keep the demo's state here instead of a temporary folder")
    s.set_defaults(fn=_demo)

    s = sub.add_parser("journal", help="query the audit journal")
    src = s.add_mutually_exclusive_group(required=True)
    src.add_argument("--config", help="gateway TOML file (the journal is <state_dir>/journal.sqlite)")
    src.add_argument("--db", help="path of a journal.sqlite")
    s.add_argument("--table", choices=("decisions", "fills", "admin", "alerts"), default="decisions")
    s.add_argument("--account")
    s.add_argument("--code", help="reason code (rejects) or warning code (warns)")
    s.add_argument("--since", help="ISO-8601 time, UTC unless an offset is given")
    s.add_argument("--until", help="ISO-8601 time (exclusive)")
    s.add_argument("--date", type=_trade_date, help="trading day YYYYMMDD (the journal keeps every day)")
    s.add_argument("--limit", type=int)
    s.add_argument("--format", choices=("table", "csv", "json"), default="table")
    s.set_defaults(fn=_journal)

    s = sub.add_parser("admin", help="operate a running gateway through its admin socket")
    src = s.add_mutually_exclusive_group(required=True)
    src.add_argument("--config", help="gateway TOML file (names the admin socket)")
    src.add_argument("--socket", help="path of the admin socket")
    acts = s.add_subparsers(dest="action", required=True)
    acts.add_parser("status", help="sessions, open orders, positions, utilisation, switches")
    for name, what in (("kill", "kill switch: blocks new orders and cancels open ones in scope"),
                       ("reduce-only", "only orders that reduce a position pass")):
        a = acts.add_parser(name, help=what)
        a.add_argument("state", choices=("on", "off"))
        a.add_argument("--scope", required=True, help="global, account:ACC, instrument:SYMBOL, session:KEY "
                                                      "(e.g. FIXGW->OMS1), trader:NAME or strategy:NAME")
    a = acts.add_parser("halt", help="halt (on) or resume (off) trading in one instrument")
    a.add_argument("state", choices=("on", "off"))
    a.add_argument("--symbol", required=True)
    a = acts.add_parser("override", help="raise or lower one limit of one scope until a time; it reverts by itself")
    a.add_argument("--scope", required=True, help="global, account:ACC, instrument:SYM or sector:NAME")
    a.add_argument("--limit", required=True, help="NAME=VALUE as in limits.toml, e.g. qty_max=5000")
    a.add_argument("--until", required=True, help="ISO-8601 time, UTC unless an offset is given")
    acts.add_parser("breakers", help="tripped circuit breakers and halted instruments")
    a = acts.add_parser("clear-breaker", help="clear a tripped circuit breaker (see `breakers`)")
    a.add_argument("--code", required=True, choices=("REJECT_STORM", "MESSAGE_STORM", "REPEATED_EXECUTIONS"))
    a.add_argument("--scope", required=True, help="as `breakers` lists it: session:KEY, account:ACC, strategy:NAME")
    acts.add_parser("reload", help="reload limits and reference data (the old stay if the new are invalid)")
    acts.add_parser("rollover", help="end the trading day now: carry open orders and positions, archive the day")
    for name in ("logout", "logon"):
        a = acts.add_parser(name, help=f"{name} a FIX session, e.g. FIXGW->OMS1")
        a.add_argument("session")
    seq = acts.add_parser("seq-reset", help="set the next sequence numbers of a FIX session, e.g. FIXGW->VENUE")
    seq.add_argument("session")
    seq.add_argument("--next-sender", type=_seq_num, metavar="N",
                     help="MsgSeqNum of the next message the gateway sends on the session")
    seq.add_argument("--next-target", type=_seq_num, metavar="N",
                     help="MsgSeqNum the gateway expects next from the counterparty")
    for a in acts.choices.values():
        if a.prog.split()[-1] not in ("status", "breakers"):
            a.add_argument("--who", help="operator name (default: the login name)")
            a.add_argument("--why", required=True, help="reason, kept in the journal")
    s.set_defaults(fn=_admin)

    s = sub.add_parser("limits", help="limit changes under four eyes: propose, approve (by another person), history")
    acts = s.add_subparsers(dest="action", required=True)
    for name, what in (("propose", "stage a folder of limit files as a new version; prints its what-if on today"),
                       ("approve", "put a proposed version in force (not by its proposer)")):
        a = acts.add_parser(name, help=what)
        a.add_argument("folder" if name == "propose" else "version")
        src = a.add_mutually_exclusive_group(required=True)
        src.add_argument("--config", help="gateway TOML file (names the admin socket)")
        src.add_argument("--socket", help="path of the admin socket")
        a.add_argument("--who", help="your name (default: the login name)")
        a.add_argument("--why", required=name == "propose", default="", help="reason, kept in the journal")
    a = acts.add_parser("history", help="every version with proposer, approver, times and its diff")
    a.add_argument("--config", required=True, help="gateway TOML file")
    a.add_argument("--format", choices=("text", "json"), default="text")
    s.set_defaults(fn=_limits)

    s = sub.add_parser("what-if", help="replay a trading day's requests and fills under other limits; report what "
                                       "changes")
    s.add_argument("--config", required=True, help="gateway TOML file (its state folder holds the day)")
    s.add_argument("--date", required=True, type=_trade_date, help="trading day YYYYMMDD (current or archived)")
    s.add_argument("--limits", required=True, help="folder with the proposed limits.toml (and optionally "
                                                   "instruments.csv, accounts.toml, scenarios.csv)")
    s.add_argument("--format", choices=("md", "csv", "json"), default="md")
    s.add_argument("--out", help="write the report here instead of stdout")
    s.set_defaults(fn=_what_if)

    s = sub.add_parser("surveillance", help="market-abuse patterns in a trading day's flow (exit 1: alerts)")
    s.add_argument("--config", required=True, help="gateway TOML file (its state folder holds the day)")
    s.add_argument("--date", required=True, type=_trade_date, help="trading day YYYYMMDD (current or archived)")
    s.add_argument("--format", choices=("md", "json"), default="md")
    s.set_defaults(fn=_surveillance)

    s = sub.add_parser("report", help="compliance reports of a trading day")
    kinds = s.add_subparsers(dest="report", required=True)
    r = kinds.add_parser("controls", help="what the controls did, mapped to RTS 6 and 15c3-5: Markdown, HTML, PNG")
    r.add_argument("--config", required=True, help="gateway TOML file (its state folder holds the day)")
    r.add_argument("--date", required=True, type=_trade_date, help="trading day YYYYMMDD (in the journal)")
    r.add_argument("--out", required=True, help="folder for controls-DATE.md, .html and -utilisation.png")
    s.set_defaults(fn=_report)

    s = sub.add_parser("reconcile", help="reconciliation report for a trading day (exit 1: open breaks)")
    s.add_argument("--date", required=True, type=_trade_date, help="trading day YYYYMMDD")
    s.add_argument("--config", help="gateway TOML: reconcile from its live store")
    s.add_argument("--gateway-log", help="offline: the gateway's QuickFIX message log of the venue session")
    s.add_argument("--dropcopy-log", help="offline: the QuickFIX message log of the drop-copy session")
    s.add_argument("--venue-comp-id", help="offline: the venue's SenderCompID on the order session")
    s.add_argument("--dropcopy-comp-id", help="offline: the venue's SenderCompID on the drop copy")
    s.add_argument("--grace-seconds", type=float, help="how late a copy may be (default: config, else 5)")
    s.add_argument("--as-of", help="ISO-8601 time the report is made as of (default: now / after the logs)")
    s.add_argument("--out", help="folder for the reports (default: the configured report_dir, else .)")
    s.add_argument("--format", default="md,csv,json", help="comma-separated: md, csv, json")
    s.set_defaults(fn=_reconcile)

    args = p.parse_args(argv)
    if args.command == "admin" and args.action == "seq-reset" and args.next_sender is None \
            and args.next_target is None:
        seq.error("give --next-sender N, --next-target N or both")  # exit 2, before anything is sent
    try:
        return int(args.fn(args))
    except ConfigError as e:
        print(f"fixgw: configuration error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
