"""``/console/``: server-rendered pages for finance and support (the month, an order's story,
the review queue, failed work, search) behind a sign-in with an API token.

The blueprint owns its own security: a signed session cookie scoped to ``/console``, CSRF on
every form (Flask-WTF, checked only here: ``/api/v1`` and ``/webhooks`` are untouched), a strict
Content-Security-Policy and ``X-Frame-Options: DENY`` on every console response, HTML error
pages, and one audit row per form post (as ``/api/v1`` calls get)."""
from __future__ import annotations

from datetime import timedelta

from flask import Blueprint, Flask
from flask_wtf.csrf import CSRFProtect

bp = Blueprint("console", __name__, url_prefix="/console", template_folder="templates",
               static_folder="static", static_url_path="/static")

csrf = CSRFProtect()

SESSION_COOKIE = "bridge_console"


def init_app(app: Flask, settings) -> None:
    from bridge.web.console import access, fmt, pages, secret, signin  # noqa: F401 - routes

    app.secret_key = secret.resolve(settings)
    app.config.update(
        SESSION_COOKIE_NAME=SESSION_COOKIE,
        SESSION_COOKIE_PATH="/console",      # never sent to /api/v1 or /webhooks
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Strict",
        PERMANENT_SESSION_LIFETIME=timedelta(hours=settings.console_session_hours),
        SESSION_REFRESH_EACH_REQUEST=False,  # the expiry counts from sign-in, not from the last click
        # CSRF is checked by the console blueprint alone (access.before_request), not app-wide.
        WTF_CSRF_CHECK_DEFAULT=False,
        WTF_CSRF_TIME_LIMIT=None,            # the token lives as long as the session
    )
    app.session_interface = access.ConsoleSessionInterface(settings.trusted_proxies)
    csrf.init_app(app)
    fmt.register(app)
    app.after_request(access.headers)  # CSP and framing rules on every /console response
    app.register_blueprint(bp)
