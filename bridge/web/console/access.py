"""Who is signed in to the console and what they may do.

The session cookie holds only the API token's row id and a short fingerprint of its stored
hash (never the token). Every request looks the token up again, so a revoked or deleted token
ends the session at the next request, and a scope change applies at once. What the token's
scopes allow decides which pages exist for this person."""
from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from datetime import datetime

from flask import (Flask, Response, current_app, flash, g, redirect, render_template, request, session,
                   url_for)
from flask.sessions import SecureCookieSessionInterface
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException
from sqlalchemy import insert, select

from bridge.ledger.models import ApiAudit, ApiToken
from bridge.web import audit
from bridge.web.console import bp, csrf

log = logging.getLogger("bridge.web.console")

# Pages (capabilities) and the scopes that open them; ``admin`` opens every one.
CAPABILITIES = {
    "month": ("finance:read",),
    "orders": ("finance:read", "refunds:review"),
    "search": ("finance:read", "refunds:review"),
    "review": ("refunds:review",),
    "failed": (),
}
# The scope a capability's form posts are recorded under in the audit trail.
AUDIT_SCOPE = {"review": "refunds:review", "failed": "admin"}
CONSOLE_SCOPES = ("finance:read", "refunds:review", "admin")

CSP = ("default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
       "base-uri 'none'; frame-ancestors 'none'")
# The chart is an SVG image drawn by pygal, which puts its styles inside the SVG: that one
# response may carry inline styles, and still no script of any kind.
CHART_CSP = "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'"


@dataclass(frozen=True)
class User:
    token_id: int
    name: str
    scopes: tuple[str, ...]

    def may(self, capability: str) -> bool:
        return "admin" in self.scopes or any(s in self.scopes for s in CAPABILITIES[capability])

    @property
    def pages(self) -> tuple[str, ...]:
        return tuple(c for c in CAPABILITIES if self.may(c))


def fingerprint(token_hash: str) -> str:
    return token_hash[:16]


class ConsoleSessionInterface(SecureCookieSessionInterface):
    """Flask's signed cookie session, ``Secure`` whenever the request came over HTTPS (directly,
    or through the trusted proxy in front, which says so in X-Forwarded-Proto)."""

    def __init__(self, trusted_proxies: int):
        self.trusted_proxies = trusted_proxies

    def get_cookie_secure(self, app: Flask) -> bool:
        if request.is_secure:
            return True
        if self.trusted_proxies > 0:
            proto = request.headers.get("X-Forwarded-Proto", "").split(",")[-1].strip().lower()
            return proto == "https"
        return False


def sign_in(row: ApiToken, now: datetime) -> None:
    session.clear()  # a fresh session (and CSRF token) for the new identity
    session.permanent = True
    session["tid"] = row.id
    session["tfp"] = fingerprint(row.token_hash)
    session["since"] = int(now.timestamp())  # the session ends a fixed time after sign-in


def current_user() -> User | None:
    return g.get("console_user")


@bp.before_request
def _load_user():
    g.console_user = None
    if request.endpoint == "console.static":
        return None
    tid = session.get("tid")
    if tid is not None:
        rt = current_app.extensions["bridge"]
        # An absolute lifetime from sign-in, however active the session has been (the cookie's
        # own expiry and signed timestamp say the same to the browser and on every load).
        age = rt.clock().timestamp() - float(session.get("since") or 0)
        if not 0 <= age <= current_app.permanent_session_lifetime.total_seconds():
            session.clear()
            flash("Your session has expired. Sign in again.")
            tid = None
    if tid is not None:
        with rt.reads() as s:
            row = s.execute(select(ApiToken).where(ApiToken.id == tid)).scalar_one_or_none()
            ok = (row is not None and row.revoked_at is None and fingerprint(row.token_hash) == session.get("tfp")
                  and any(sc in (row.scopes or []) for sc in CONSOLE_SCOPES))
            if ok:
                g.console_user = User(row.id, row.name, tuple(row.scopes))
        if not ok:
            session.clear()
            flash("Your session ended: its token was revoked, deleted or changed. Sign in again.")
    if request.method not in ("GET", "HEAD", "OPTIONS"):
        csrf.protect()  # every form post, sign-in included, carries the session's CSRF token
    return None


def needs(capability: str):
    """Decorator: a signed-in user whose token opens ``capability``; else the sign-in page
    (GET) or a 401 page (a form post), or a 403 page naming what is missing."""
    def wrap(view):
        @functools.wraps(view)
        def inner(*args, **kwargs):
            user = current_user()
            if user is None:
                if request.method == "GET":
                    return redirect(url_for("console.sign_in", next=request.full_path.rstrip("?")))
                return render_template("console/error.html", title="Signed out",
                                       message="Your session has ended. Sign in again."), 401
            if not user.may(capability):
                need = " or ".join(CAPABILITIES[capability] + ("admin",))
                return render_template("console/error.html", title="Not for this token",
                                       message=f"This page needs a token with the {need} scope."), 403
            g.console_audit_scope = AUDIT_SCOPE.get(capability, CAPABILITIES[capability][0]
                                                    if CAPABILITIES[capability] else "admin")
            return view(*args, **kwargs)
        inner.capability = capability
        return inner
    return wrap


def safe_next(target: str | None) -> str | None:
    """Only a path inside the console (no scheme, no host, no ``//``): never an open redirect."""
    if target and target.startswith("/console/") and not target.startswith("//") and "\\" not in target:
        return target
    return None


def headers(response: Response) -> Response:
    if not (request.path == "/console" or request.path.startswith("/console/")):
        return response
    response.headers["Content-Security-Policy"] = g.get("console_csp", CSP)
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    if request.endpoint != "console.static":
        # Pages name customers and amounts: never kept by a shared cache or the back button.
        response.headers["Cache-Control"] = "no-store"
    return response


@bp.after_request
def _audit(response: Response) -> Response:
    """One metadata row per form post (sign-in, sign-out, reviews, retries), as /api/v1 calls
    get: a failed sign-in is a 401 row, which the per-IP failure throttle counts."""
    if request.method != "POST":
        return response
    rt = current_app.extensions["bridge"]
    user = current_user()
    row = {"created_at": rt.clock(), "client_ip": audit.client_ip(), "method": "POST",
           "path": audit._clean(request.path, 512), "status": response.status_code,
           "token_id": g.get("console_signed_in_id") or (user.token_id if user else None),
           "scope": g.get("console_audit_scope")}
    try:
        with rt.engine.begin() as conn:
            conn.execute(insert(ApiAudit), row)
    except Exception as err:  # the answer stands; the trail is best effort, as for the API
        log.warning("console audit row not written (%s): %s", row["status"], type(err).__name__)
    return response


@bp.errorhandler(CSRFError)
def _csrf_error(err: CSRFError):
    return render_template("console/error.html", title="Form refused",
                           message="The form had no valid security token (it may have expired). "
                                   "Go back, reload the page and try again."), 400


@bp.errorhandler(HTTPException)
def _http_error(err: HTTPException):
    return render_template("console/error.html", title=err.name, message=err.description), err.code or 500
