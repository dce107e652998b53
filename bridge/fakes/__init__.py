"""Local fake providers for tests and demos: Stripe and Paddle refund APIs on 127.0.0.1, with
fault knobs, a call log, an effects ledger and signed webhooks (see ``base``)."""
from bridge.fakes.base import AppliedRefund, CallRecord, Fault, FaultPlan, WebhookDelivery
from bridge.fakes.paddle_server import FakePaddle
from bridge.fakes.stripe_server import FakeStripe

__all__ = ["AppliedRefund", "CallRecord", "Fault", "FaultPlan", "FakePaddle", "FakeStripe",
           "WebhookDelivery"]
