"""The one place that knows which providers exist: name -> implementation of ``base.Provider``.

A new provider is a new package under ``bridge/providers/`` and one line in ``_FACTORIES``.
Everything else asks here: intake routes ``/webhooks/<name>``, the worker parses and refunds
through ``Providers[name]``, the CLI and finance API validate a ``provider`` parameter with
:func:`names`.
"""
from __future__ import annotations

from types import MappingProxyType
from typing import Callable, Iterator, Mapping

from bridge.providers.base import Provider
from bridge.providers.paddle import PaddleProvider
from bridge.providers.stripe import StripeProvider

# name -> factory taking the settings (an immutable ``bridge.settings.Settings``).
_FACTORIES: Mapping[str, Callable[..., Provider]] = MappingProxyType({
    StripeProvider.name: StripeProvider,
    PaddleProvider.name: PaddleProvider,
})


class UnknownProvider(KeyError):
    """A provider name no package implements (a stored row from elsewhere, a typo)."""


def names() -> tuple[str, ...]:
    return tuple(_FACTORIES)


def provider_class(name: str) -> type:
    """The implementation of ``name``, for the facts that need no settings (its class
    attributes and static methods, e.g. ``dispute_lost_before_won``)."""
    try:
        return _FACTORIES[name]
    except KeyError:
        raise UnknownProvider(name) from None


class Providers(Mapping[str, Provider]):
    """The providers of one runtime, bound to its settings (each builds its API client on
    first use and keeps it: one per process, shared by the worker's threads)."""

    def __init__(self, settings, overrides: Mapping[str, Provider] | None = None,
                 observe: Callable[[str, str], None] | None = None):
        # ``observe(operation, status)`` is told of every API call (the metrics).
        self._by_name = {name: factory(settings, observe=observe) for name, factory in _FACTORIES.items()}
        self._by_name.update(overrides or {})

    def __getitem__(self, name: str) -> Provider:
        try:
            return self._by_name[name]
        except KeyError:
            raise UnknownProvider(name) from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._by_name)

    def __len__(self) -> int:
        return len(self._by_name)


def build(settings) -> Providers:
    return Providers(settings)
