"""Sign-in with an API token (its failures throttled per client IP by the API's own throttle:
the same count of recent 401s in the audit trail), sign-out, and the console's landing page."""
from __future__ import annotations

from flask import current_app, flash, g, redirect, render_template, request, session, url_for

from bridge.ledger.tokens import find_token
from bridge.web.auth import _throttled_for as throttled_for
from bridge.web.console import bp
from bridge.web.console.access import CONSOLE_SCOPES, User, current_user, safe_next, sign_in as start_session

# Where a person lands after signing in: finance on the month, a reviewer on the queue.
HOME_ORDER = (("month", "console.month"), ("review", "console.review_queue"), ("search", "console.search"),
              ("failed", "console.failed"))


def _rt():
    return current_app.extensions["bridge"]


def _home(user) -> str:
    return url_for(next(ep for cap, ep in HOME_ORDER if user.may(cap)))


@bp.get("/")
def index():
    user = current_user()
    if user is None:
        return redirect(url_for("console.sign_in"))
    return redirect(_home(user))


@bp.route("/sign-in", methods=["GET", "POST"])
def sign_in():
    nxt = safe_next(request.values.get("next"))
    if request.method == "GET":
        if current_user() is not None:
            return redirect(nxt or _home(current_user()))
        return render_template("console/sign_in.html", next=nxt)
    token = (request.form.get("token") or "").strip()
    with _rt().reads() as s:
        row = find_token(s, token) if token else None
    if row is None or not any(sc in row.scopes for sc in CONSOLE_SCOPES):
        # A failure, throttled exactly like the API's (the same count of 401s per address):
        # past the limit the answer is 429, and a valid token still signs in.
        retry = throttled_for()
        if retry is not None:
            return render_template("console/sign_in.html", next=nxt,
                                   error=f"Too many failed sign-ins from this address. Try again in {retry} s."), \
                429, {"Retry-After": str(retry)}
        msg = ("That token is not valid." if row is None else
               "That token has none of the console's scopes (finance:read, refunds:review, admin).")
        return render_template("console/sign_in.html", next=nxt, error=msg), 401
    start_session(row, _rt().clock())
    g.console_signed_in_id = row.id
    flash(f"Signed in as {row.name}.")
    return redirect(nxt or _home(User(row.id, row.name, tuple(row.scopes))), code=303)


@bp.post("/sign-out")
def sign_out():
    session.clear()
    flash("Signed out.")
    return redirect(url_for("console.sign_in"), code=303)
