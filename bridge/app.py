"""The Flask application factory. ``create_app(settings)`` has no side effects beyond
building the app: no schema changes, no threads (``bridge serve`` does those)."""
from __future__ import annotations

from typing import Optional

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from bridge.logs import configure_logging
from bridge.runtime import Runtime
from bridge.settings import Settings
from bridge.web.errors import register_error_handlers


def create_app(settings: Optional[Settings] = None, runtime: Optional[Runtime] = None) -> Flask:
    if runtime is None:
        settings = settings or Settings.from_env()
        runtime = Runtime.build(settings)
    settings = runtime.settings
    configure_logging(settings.log_level)
    app = Flask("bridge", instance_path=str(settings.instance_dir))
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    app.json.sort_keys = False
    app.extensions["bridge"] = runtime
    register_error_handlers(app)

    from bridge.web import (api, audit, auth, finance, health, licenses, orders, policies,  # noqa: F401
                            refund_quotes, refund_requests, webhooks)
    app.register_blueprint(webhooks.bp)
    if settings.trusted_proxies > 0:
        # The client address is the one the PaaS router appended to X-Forwarded-For (the API's
        # failure throttle keys on it). Inside the webhook fast path: deliveries need no address
        # and skip the header parsing. Only X-Forwarded-For is trusted: nothing builds URLs.
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=settings.trusted_proxies, x_proto=0)
    # Ordinary webhook deliveries are answered before Flask's request machinery (see webhooks).
    app.wsgi_app = webhooks.IntakeFastPath(app.wsgi_app, runtime)
    app.register_blueprint(health.bp)
    app.register_blueprint(api.bp)
    auth.init_app(app)   # per-IP auth failure throttle, before any /api/v1 view
    audit.init_app(app)  # one audit row per /api/v1 call, after the answer is known
    return app
