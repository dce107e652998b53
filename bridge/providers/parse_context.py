"""What an event parser knows of the event it is reading (provider, type, when), and the
``Ignored`` results it hands back: one definition for every provider's parser."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from bridge.domain.events import Ignored


@dataclass(frozen=True)
class ParseContext:
    provider: str
    event_type: str
    occurred_at: datetime

    def ignored(self, why: str) -> Ignored:
        return Ignored(self.provider, self.occurred_at, self.event_type, why)

    def unknown(self, path: str, value: str) -> Ignored:
        """A value of a provider enum the bridge does not know: noted, never a parse failure."""
        return Ignored(self.provider, self.occurred_at, self.event_type, "unknown value",
                       unknown_value=f"{path}={value!r}")
