"""Stripe behind the ``Provider`` protocol: signatures (``signature``), snapshot events
(``events``), the API (``api``, the only module that imports the ``stripe`` SDK) and the
provider object tying them together (``provider``)."""
from bridge.providers.stripe.provider import StripeProvider

__all__ = ["StripeProvider"]
