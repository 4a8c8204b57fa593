"""The operator console's web application (aiohttp, in the daemon's event loop, on `[console] host:port`).

Nothing is shown without a login. A session is an encrypted, authenticated cookie (aiohttp-session with
Fernet: HttpOnly, SameSite=Strict, Secure) holding the user name, a CSRF token and when the user signed in; the
key is made once per state folder (`console.key`, 0600), so sessions outlive a restart. Every POST carries the
session's CSRF token. Actions need the operator role and a typed reason, and go through the admin socket's own
dispatch (gateway.control.admin) with the signed-in user as who: journaled exactly as `fixgw admin` is. A refused
action, a login, a failed login and a throttled one are journaled too (admin rows `console ...`).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from pathlib import Path
from typing import Any, Awaitable, Callable

from aiohttp import web
from aiohttp_session import get_session, new_session, session_middleware
from aiohttp_session.cookie_storage import EncryptedCookieStorage

from config.settings import ConsoleSettings
from gateway.control.admin import AdminServer
from gateway.control.console import snapshot, views
from gateway.control.console.auth import LoginThrottle, User, Users, new_csrf_token, same_token
from gateway.events import schema
from gateway.service import Gateway
from risk.reasons import CATALOGUE

log = logging.getLogger("fixgw.console")
STATIC = Path(__file__).resolve().parent / "static"
RUNBOOKS = Path(__file__).resolve().parents[3] / "docs" / "runbooks"
# Form action -> the admin socket's request (without who and why)
ACTIONS: dict[str, Callable[[str, str], dict[str, Any]]] = {
    "kill on": lambda target, code: {"cmd": "kill", "scope": target, "state": "on"},
    "kill off": lambda target, code: {"cmd": "kill", "scope": target, "state": "off"},
    "reduce_only on": lambda target, code: {"cmd": "reduce_only", "scope": target, "state": "on"},
    "reduce_only off": lambda target, code: {"cmd": "reduce_only", "scope": target, "state": "off"},
    "logout": lambda target, code: {"cmd": "logout", "session": target},
    "logon": lambda target, code: {"cmd": "logon", "session": target},
    "clear_breaker": lambda target, code: {"cmd": "clear_breaker", "scope": target, "code": code},
}
# Scripts and style sheets from the console itself only; inline style attributes (a bar's width) are allowed.
HEADERS = {"Content-Security-Policy": "default-src 'self'; style-src-attr 'unsafe-inline'; frame-ancestors 'none'; "
                                      "form-action 'self'",
           "X-Frame-Options": "DENY", "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer",
           "Cache-Control": "no-store"}


def secret_key(state_dir: Path) -> bytes:
    """The cookie key of this state folder: 32 random bytes, made once, readable by the service user only."""
    path = state_dir / "console.key"
    try:
        key = path.read_bytes()
        if len(key) == 32:
            return key
    except FileNotFoundError:
        pass
    key = os.urandom(32)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(key)
    os.replace(tmp, path)
    return key


class Console:
    def __init__(self, gw: Gateway, admin: AdminServer, settings: ConsoleSettings) -> None:
        self.gw, self.admin, self.s = gw, admin, settings
        self.users = Users(settings.users_file)
        self.throttle = LoginThrottle(settings.login_max_failures, settings.login_window_s)
        self._runner: web.AppRunner | None = None
        self._snap: snapshot.Snapshot | None = None
        self._snap_lock = asyncio.Lock()
        self.port = settings.port  # ge 1: the configuration names the port

    # ------------------------------------------------------------------ life
    def app(self) -> web.Application:
        storage = EncryptedCookieStorage(secret_key(self.gw.cfg.state_dir), cookie_name="fixgw_console",
                                         max_age=self.s.session_max_age_s, httponly=True, secure=self.s.cookie_secure,
                                         samesite="Strict")
        app = web.Application(middlewares=[session_middleware(storage), self._headers], client_max_size=64 * 1024)
        app.router.add_get("/login", self.login_page)
        app.router.add_post("/login", self.login)
        app.router.add_post("/logout", self.logout)
        app.router.add_get("/", self.page)
        app.router.add_get("/events", self.events)
        app.router.add_post("/action", self.action)
        app.router.add_get("/runbooks/{code}", self.runbook)
        app.router.add_static("/static/", STATIC, show_index=False)
        return app

    async def start(self) -> None:
        self._runner = web.AppRunner(self.app(), access_log=None, shutdown_timeout=2.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.s.host, self.s.port)
        await site.start()
        log.info("operator console listening", extra={"url": f"http://{self.s.host}:{self.port}/"})

    async def serve_forever(self) -> None:
        if self._runner is None:
            await self.start()
        await asyncio.Event().wait()

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @web.middleware
    async def _headers(self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
                       ) -> web.StreamResponse:
        resp = await handler(request)
        if not resp.prepared:
            resp.headers.update(HEADERS)
        return resp

    # ------------------------------------------------------------------ helpers
    def _journal(self, action: str, scope: str, who: str, why: str) -> None:
        self.gw.events.append(schema.Admin(action=f"console {action}", scope=scope, who=who, why=why,
                                           ts=time.time_ns()))

    async def _user(self, request: web.Request) -> tuple[User | None, Any]:
        """The signed-in user (still in the users file, in the same role), and the session."""
        session = await get_session(request)
        name = session.get("user")
        if not name:
            return None, session
        user = await asyncio.to_thread(self.users.get, name)
        if user is None or user.role != session.get("role"):
            session.invalidate()
            return None, session
        return user, session

    async def _snapshot(self) -> snapshot.Snapshot:
        async with self._snap_lock:  # several pages share one snapshot per refresh
            if self._snap is None or time.time() - self._snap.taken_at >= self.s.refresh_s / 2:
                self._snap = await asyncio.to_thread(snapshot.take, self.gw, self.admin.started)
            return self._snap

    # ------------------------------------------------------------------ pages
    async def login_page(self, request: web.Request) -> web.Response:
        session = await get_session(request)
        session.setdefault("csrf", new_csrf_token())
        return web.Response(text=views.login(self.gw.cfg.gateway.name, session["csrf"]), content_type="text/html")

    async def login(self, request: web.Request) -> web.Response:
        session = await get_session(request)
        form = await request.post()
        name, password = str(form.get("user", "")), str(form.get("password", ""))
        remote = request.remote or "?"
        gateway = self.gw.cfg.gateway.name
        keys = (f"user:{name}", f"addr:{remote}")
        if self.throttle.blocked(*keys):
            # journaled once per name and address and window: a flood of attempts must not flood the journal
            if self.throttle.first_block(f"{name}|{remote}"):
                await asyncio.to_thread(self._journal, "login throttled", "console", name,
                                        f"too many failures, from {remote}")
            return web.Response(status=429, content_type="text/html", text=views.login(
                gateway, session.setdefault("csrf", new_csrf_token()), "Too many failed sign-ins: wait a few minutes."))
        if not same_token(session.get("csrf"), form.get("csrf")):
            self.throttle.failed(*keys)
            await asyncio.to_thread(self._journal, "login refused", "console", name or "(none)",
                                    f"no valid CSRF token, from {remote}")
            raise web.HTTPForbidden(text="refused: the login form's token is missing or stale; reload the page")
        user = await asyncio.to_thread(self.users.check, name, password)
        if user is None:
            self.throttle.failed(*keys)
            await asyncio.to_thread(self._journal, "login failed", "console", name, f"wrong user or password, from {remote}")
            return web.Response(status=401, content_type="text/html",
                                text=views.login(gateway, session["csrf"], "Wrong user or password."))
        self.throttle.succeeded(keys[0])
        session = await new_session(request)  # a fresh session: nothing of the anonymous one carries over
        session.update(user=user.name, role=user.role, csrf=new_csrf_token(), since=time.time())
        await asyncio.to_thread(self._journal, "login", "console", user.name, f"{user.role}, from {remote}")
        raise web.HTTPSeeOther("/")

    async def logout(self, request: web.Request) -> web.Response:
        user, session = await self._user(request)
        form = await request.post()
        if user is not None and same_token(session.get("csrf"), form.get("csrf")):
            session.invalidate()
            await asyncio.to_thread(self._journal, "logout", "console", user.name, "signed out")
        raise web.HTTPSeeOther("/login")

    async def page(self, request: web.Request) -> web.Response:
        user, session = await self._user(request)
        if user is None:
            raise web.HTTPSeeOther("/login")
        flash = session.pop("flash", "")
        snap = await self._snapshot()
        return web.Response(text=views.page(snap, user, session["csrf"], self.gw.cfg.gateway.name, flash),
                            content_type="text/html")

    async def events(self, request: web.Request) -> web.StreamResponse:
        user, _session = await self._user(request)
        if user is None:
            raise web.HTTPUnauthorized(text="sign in first")
        resp = web.StreamResponse(headers={**HEADERS, "Content-Type": "text/event-stream"})
        await resp.prepare(request)
        sent: dict[str, str] = {}
        try:
            while True:
                current = await asyncio.to_thread(self.users.get, user.name)
                if current is None or current.role != user.role:
                    await resp.write(b"event: signed-out\ndata: {}\n\n")
                    break
                parts = views.parts(await self._snapshot(), user)
                changed = {k: v for k, v in parts.items() if sent.get(k) != v}
                if changed:
                    await resp.write(b"data: " + json.dumps(changed).encode() + b"\n\n")
                    sent.update(changed)
                await asyncio.sleep(self.s.refresh_s)
        except ConnectionResetError:  # the page was closed
            pass
        return resp

    async def action(self, request: web.Request) -> web.Response:
        user, session = await self._user(request)
        form = await request.post()
        act, target, code = str(form.get("action", "")), str(form.get("target", "")).strip(), \
            str(form.get("code", "")).strip()
        why = str(form.get("why", "")).strip()
        what = f"{act} {target}".strip()
        remote = request.remote or "?"
        if user is None:
            key = f"anon:{remote}"
            if not self.throttle.blocked(key):  # journaled up to the login limit per address and window
                self.throttle.failed(key)
                await asyncio.to_thread(self._journal, "refused", what, "(not signed in)",
                                        f"no session, from {remote}")
            raise web.HTTPUnauthorized(text="refused: sign in first")
        if not same_token(session.get("csrf"), form.get("csrf")):
            await asyncio.to_thread(self._journal, "refused", what, user.name, f"no valid CSRF token, from {remote}")
            raise web.HTTPForbidden(text="refused: the form's token is missing or wrong")
        if not user.may_act:
            await asyncio.to_thread(self._journal, "refused", what, user.name, f"{user.role} may not act, from {remote}")
            raise web.HTTPForbidden(text=f"refused: {user.role}s may not act")
        if act not in ACTIONS:
            session["flash"] = f"Unknown action {act!r}."
            raise web.HTTPSeeOther("/")
        if not why:
            session["flash"] = "Refused: every action needs a reason."
            raise web.HTTPSeeOther("/")
        req = {**ACTIONS[act](target, code), "who": user.name, "why": why}
        try:
            res = await self.admin.dispatch(req)  # the admin socket's own path: same checks, same journal rows
            session["flash"] = f"Done: {what}" + (f" ({res['cancelled']} order(s) cancelled)"
                                                  if res.get("cancelled") else "") + "."
        except Exception as e:
            session["flash"] = f"Refused: {what}: {e}"
        self._snap = None  # the page after the redirect shows the action's effect
        raise web.HTTPSeeOther("/")

    async def runbook(self, request: web.Request) -> web.Response:
        user, _session = await self._user(request)
        if user is None:
            raise web.HTTPSeeOther("/login")
        code = request.match_info["code"]
        if code not in CATALOGUE:
            raise web.HTTPNotFound(text=f"no runbook for {code!r}")
        path = RUNBOOKS / f"{code}.md"
        text = path.read_text() if path.is_file() else f"{code}: {CATALOGUE[code].meaning}\n\n({path} is not installed)"
        return web.Response(text=views.runbook(code, text), content_type="text/html")
