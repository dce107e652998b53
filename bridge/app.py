"""The Flask application factory. ``create_app(settings)`` has no side effects beyond
building the app: no schema changes, no threads (``bridge serve`` does those)."""
from __future__ import annotations

import sys
from typing import Optional

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from bridge.logs import configure_logging
from bridge.runtime import Runtime
from bridge.settings import ConfigError, Settings
from bridge.web.errors import register_error_handlers


def create_app(settings: Optional[Settings] = None, runtime: Optional[Runtime] = None) -> Flask:
    """With neither argument, the settings come from the environment (gunicorn's
    ``bridge.app:create_app()``): a configuration that cannot work stops the process with
    one line naming the variable, and exit status 4, which gunicorn's master takes as "the
    app failed to load" and stops (rather than restarting workers that cannot work)."""
    if runtime is None:
        settings = settings or _settings_from_env_or_exit()
        runtime = Runtime.build(settings)
    settings = runtime.settings
    configure_logging(settings.log_level, settings.log_format)
    app = Flask("bridge", instance_path=str(settings.instance_dir))
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    app.json.sort_keys = False
    app.extensions["bridge"] = runtime
    register_error_handlers(app)

    from bridge.web import (api, audit, auth, finance, health, licenses, metrics, orders,  # noqa: F401
                            policies, refund_requests, request_ids, webhooks)
    app.register_blueprint(webhooks.bp)
    if settings.trusted_proxies > 0:
        # The client address is the one the PaaS router appended to X-Forwarded-For (the API's
        # failure throttle keys on it). Inside the webhook fast path: deliveries need no address
        # and skip the header parsing. Only X-Forwarded-For is trusted: nothing builds URLs.
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=settings.trusted_proxies, x_proto=0)
    # Ordinary webhook deliveries are answered before Flask's request machinery (see webhooks).
    app.wsgi_app = webhooks.IntakeFastPath(app.wsgi_app, runtime)
    app.register_blueprint(health.bp)
    app.register_blueprint(metrics.bp)
    app.register_blueprint(api.bp)
    audit.init_app(app)  # one audit row per /api/v1 call, after the answer is known
    request_ids.init_app(app)  # X-Request-ID, and the request id of every log record
    return app


APP_LOAD_ERROR = 4  # gunicorn's own exit status for "App failed to load": the master stops


def _settings_from_env_or_exit() -> Settings:
    from bridge.preflight import check_startup
    try:
        settings = Settings.from_env()
        check_startup(settings)
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr, flush=True)
        raise SystemExit(APP_LOAD_ERROR) from None
    return settings
