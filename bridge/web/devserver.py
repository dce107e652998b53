"""The request handler of ``bridge serve`` (werkzeug's server): its access log shows the
path without the query string. A token sent as ``?access_token=`` is refused by the API, but
werkzeug would still have written the whole request line (and, for a malformed request,
``http.server`` puts the raw line into its error message)."""
from __future__ import annotations

from werkzeug.serving import WSGIRequestHandler

from bridge.logs import escape_controls, strip_queries


class QueryFreeRequestHandler(WSGIRequestHandler):
    def log_request(self, code="-", size="-") -> None:
        path = getattr(self, "path", None)
        if path is None:  # the request line did not parse
            line = strip_queries(self.requestline or "")
        else:
            line = f"{self.command} {path.split('?', 1)[0]} {self.request_version}"
        self.log("info", '"%s" %s %s', escape_controls(line), code, size)

    def log(self, type: str, message: str, *args) -> None:
        # Every other line werkzeug or http.server writes (errors quoting the request line).
        text = message % args if args else message
        super().log(type, "%s", escape_controls(strip_queries(text)))
