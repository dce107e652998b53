"""gunicorn's logger for the web process (``logger_class`` in ``bridge.gunicorn_conf``): its
error log never shows a URL's query string, nor a control character a client sent."""
from __future__ import annotations

from gunicorn.glogging import Logger

from bridge.logs import QueryFreeFilter


class QueryFreeLogger(Logger):
    def setup(self, cfg) -> None:
        super().setup(cfg)  # runs again on SIGHUP / log reopening: add the filter once
        for log in (self.error_log, self.access_log):
            if not any(isinstance(f, QueryFreeFilter) for f in log.filters):
                log.addFilter(QueryFreeFilter())
