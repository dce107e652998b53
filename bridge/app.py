"""The Flask application factory. ``create_app(settings)`` has no side effects beyond
building the app: no schema changes, no threads (``bridge serve`` does those)."""
from __future__ import annotations

from typing import Optional

from flask import Flask

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

    from bridge.web import (api, finance, health, licenses, orders, policies, refund_requests,  # noqa: F401
                            webhooks)
    app.register_blueprint(webhooks.bp)
    # Ordinary webhook deliveries are answered before Flask's request machinery (see webhooks).
    app.wsgi_app = webhooks.IntakeFastPath(app.wsgi_app, runtime)
    app.register_blueprint(health.bp)
    app.register_blueprint(api.bp)
    return app
