"""The part every provider implementation shares: its settings, and its API client built on
first use (the web process verifies and stores webhooks and never needs a provider's SDK)."""
from __future__ import annotations

import threading


class LazyApi:
    def __init__(self, settings, api=None, observe=None):
        self._settings = settings
        self._api = api
        self._observe = observe     # called with each API call's outcome (metrics)
        self._lock = threading.Lock()

    def _build_api(self):
        """The provider's API client from ``self._settings``; raises when its key is unset."""
        raise NotImplementedError

    @property
    def api(self):
        with self._lock:
            if self._api is None:
                self._api = self._build_api()
            return self._api
