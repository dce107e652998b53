"""Job kinds and their handlers, and the ledger hooks that connect licenses and refund
requests to the events the ledger applies."""
from __future__ import annotations

from bridge.ledger import apply as ledger_apply
from bridge.ledger.inbox import PROCESS_EVENT
from bridge.services import licenses, refund_requests
from bridge.services.notices import DELIVER_NOTICE
from bridge.worker.events import process_event
from bridge.worker.notices import deliver_notice
from bridge.worker.refunds import CONFIRM_REFUND, confirm_refund, execute_refund, fetch_fee, link_invoice


def install_hooks(policies) -> None:
    """Idempotent: the same functions every time (tests build many runtimes)."""
    hooks = ledger_apply.hooks
    def on_payment(session, payment, order, now):
        licenses.on_payment(session, payment, order, now, policies())

    hooks.on_payment = on_payment

    def on_refund(session, refund, now):
        refund_requests.on_refund(session, refund, now)
        licenses.on_refund(session, refund, policies(), now)

    def on_dispute(session, dispute, before, now):
        licenses.on_dispute(session, dispute, policies(), now)

    hooks.on_refund = on_refund
    hooks.on_dispute = on_dispute
    hooks.on_subscription_canceled = licenses.on_subscription_canceled


def all_handlers(rt) -> dict:
    install_hooks(lambda: rt.policies)
    return {
        PROCESS_EVENT: process_event,
        refund_requests.EXECUTE_REFUND: execute_refund,
        CONFIRM_REFUND: confirm_refund,
        ledger_apply.FETCH_FEE: fetch_fee,
        ledger_apply.LINK_INVOICE: link_invoice,
        DELIVER_NOTICE: deliver_notice,
    }
