"""``/api/v1/policies``: list the loaded policies; evaluate one on a hypothetical order."""
from __future__ import annotations

from flask import current_app

from bridge.policy import PolicyInputError, UnknownPolicyError
from bridge.policy.input_models import Evaluation
from bridge.web.api import bp
from bridge.web.auth import require
from bridge.web.contract import operation, respond
from bridge.web.errors import ApiError
from bridge.web.models.policies import DecisionOut, PolicyList


@bp.get("/policies")
@require("read")
@operation(responses={200: PolicyList}, tags=("policies",))
def list_policies():
    """The loaded policies with id, version and categories."""
    return respond(PolicyList, {"policies": current_app.extensions["bridge"].policies.list()})


@bp.post("/policies/<policy_id>/evaluate")
@require("read")
@operation(body=Evaluation, responses={200: DecisionOut}, errors=(404,), tags=("policies",))
def evaluate_policy(policy_id: str, body: Evaluation):
    """The decision the policy would give on a hypothetical order (nothing is stored)."""
    rt = current_app.extensions["bridge"]
    if policy_id not in rt.policies:
        raise ApiError(404, "policy_not_found", f"no policy {policy_id!r}")
    try:
        decision = rt.policies.evaluate(policy_id, body, rt.clock())
    except UnknownPolicyError:
        raise ApiError(404, "policy_not_found", f"no policy {policy_id!r}")
    except PolicyInputError as err:
        raise ApiError(422, "invalid_field", f"{err.field}: {err.message}", field=err.field)
    return respond(DecisionOut, decision.to_dict())
