"""Paddle Billing behind the ``Provider`` protocol: signatures (``signature``), notifications
(``events``), the API (``api``, the only module that imports ``paddle_billing``) and the
provider object tying them together (``provider``)."""
from bridge.providers.paddle.provider import PaddleProvider

__all__ = ["PaddleProvider"]
