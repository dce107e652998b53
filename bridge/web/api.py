"""``/api/v1``: the blueprint the API modules hang their routes on."""
from __future__ import annotations

from flask import Blueprint

bp = Blueprint("api", __name__, url_prefix="/api/v1")
