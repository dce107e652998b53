"""gunicorn's settings for the web process: ``gunicorn -c python:bridge.gunicorn_conf ...``
(the Procfile). Read once by gunicorn's master before any worker starts:

- the configuration is checked first: one that cannot work stops gunicorn with one line
  naming the variable and exit status 2, before a worker is forked;
- ``PROMETHEUS_MULTIPROC_DIR`` (default: ``<instance>/metrics``) is set up before anything
  imports prometheus-client, so every worker (and a ``bridge worker`` on the same host, which
  uses the same default) counts into files a scrape adds up; files of processes from an
  earlier start are removed;
- ``child_exit`` does prometheus-client's bookkeeping for a dead worker (its live gauges go;
  its counters stay, so totals never drop);
- the access log, when switched on (``--access-logfile -``), shows the path without its query
  string and no Referer: either can carry a token.
"""
from __future__ import annotations

import os
import sys

from bridge.settings import ConfigError, Settings

try:
    _settings = Settings.from_env()
    from bridge.preflight import check_startup
    check_startup(_settings)
except ConfigError as _err:
    print(f"error: {_err}", file=sys.stderr, flush=True)
    sys.exit(2)

if _settings.metrics_enabled:
    from bridge.metrics_dir import default_dir, prepare
    prepare(default_dir(_settings.instance_dir))

# %(U)s is the path alone; %(r)s (the request line), %(q)s (the query) and %(f)s (the
# Referer) are left out on purpose.
access_log_format = '%(h)s - - %(t)s "%(m)s %(U)s %(H)s" %(s)s %(b)s %(L)s "%(a)s"'

# gunicorn's error log quotes a request line it cannot parse ("Invalid request from ip=...:
# Invalid HTTP request line: 'GET /x?access_token=...'") and the URI of a request that failed:
# its logger strips query strings too.
logger_class = "bridge.gunicorn_log.QueryFreeLogger"


def child_exit(server, worker):
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess
        multiprocess.mark_process_dead(worker.pid)
