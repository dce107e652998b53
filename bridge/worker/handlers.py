"""Job kinds and their handlers, each given the services' effects the ledger calls back
(licenses, refund requests, the providers' follow-up fetches) explicitly."""
from __future__ import annotations

from functools import partial

from bridge.domain.follow_ups import FETCH_FEE, FETCH_PAYMENT, ITEMIZE_PAYOUT, LINK_PAYMENT
from bridge.ledger.inbox import PROCESS_EVENT
from bridge.services import refund_requests
from bridge.services.effects import ServiceEffects
from bridge.services.notices import DELIVER_NOTICE
from bridge.worker.events import ProcessEvent
from bridge.worker.notices import deliver_notice
from bridge.worker.payments import fetch_payment
from bridge.worker.payouts import itemize_payout
from bridge.worker.refunds import CONFIRM_REFUND, confirm_refund, execute_refund, fetch_fee, link_payment


def all_handlers(rt) -> dict:
    """Every job kind's handler for this runtime: one ``ServiceEffects`` shared by all."""
    effects = ServiceEffects.of(rt)
    return {
        PROCESS_EVENT: ProcessEvent(effects),  # batches too: bridge/worker/batch.py
        refund_requests.EXECUTE_REFUND: execute_refund,
        CONFIRM_REFUND: partial(confirm_refund, effects=effects),
        FETCH_FEE: fetch_fee,
        LINK_PAYMENT: partial(link_payment, effects=effects),
        FETCH_PAYMENT: partial(fetch_payment, effects=effects),
        DELIVER_NOTICE: deliver_notice,
        ITEMIZE_PAYOUT: itemize_payout,
    }
