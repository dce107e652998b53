"""``/api/v1/policies``: list the loaded policies; evaluate one on a hypothetical order."""
from __future__ import annotations

from flask import current_app, jsonify

from bridge.policy import PolicyInputError, UnknownPolicyError
from bridge.web.api import bp
from bridge.web.auth import require
from bridge.web.body import json_object
from bridge.web.errors import ApiError


@bp.get("/policies")
@require("read")
def list_policies():
    return jsonify({"policies": current_app.extensions["bridge"].policies.list()})


@bp.post("/policies/<policy_id>/evaluate")
@require("read")
def evaluate_policy(policy_id: str):
    rt = current_app.extensions["bridge"]
    if policy_id not in rt.policies:
        raise ApiError(404, "policy_not_found", f"no policy {policy_id!r}")
    doc = json_object()
    try:
        decision = rt.policies.evaluate(policy_id, doc, rt.clock())
    except UnknownPolicyError:
        raise ApiError(404, "policy_not_found", f"no policy {policy_id!r}")
    except PolicyInputError as err:
        raise ApiError(422, "invalid_field", f"{err.field}: {err.message}", field=err.field)
    return jsonify(decision.to_dict())
