"""``config/catalog.toml``: provider price or product id -> category, billing, sku (, policy).

Used to classify the lines of an order the bridge creates from a transaction. Lines not in the
catalog fall back to the price's or product's own ``custom_data``/``metadata``.
"""
from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

BILLINGS = ("one_time", "monthly", "annual")


@dataclass(frozen=True)
class CatalogEntry:
    category: str
    billing: str
    sku: Optional[str] = None
    policy: Optional[str] = None


class CatalogError(ValueError):
    pass


@dataclass(frozen=True)
class Catalog:
    entries: dict

    @classmethod
    def load(cls, path: Path) -> "Catalog":
        if not path.exists():
            return cls({})
        try:
            doc = tomllib.loads(path.read_text())
        except tomllib.TOMLDecodeError as err:
            raise CatalogError(f"{path}: {err}") from err
        entries = {}
        for section in ("prices", "products"):
            for key, raw in (doc.get(section) or {}).items():
                where = f"{path}: [{section}.\"{key}\"]"
                if not isinstance(raw, dict) or "category" not in raw or "billing" not in raw:
                    raise CatalogError(f"{where} needs category and billing")
                if raw["billing"] not in BILLINGS:
                    raise CatalogError(f"{where} billing must be one of {', '.join(BILLINGS)}")
                entries[key] = CatalogEntry(raw["category"], raw["billing"], raw.get("sku"), raw.get("policy"))
        return cls(entries)

    def lookup(self, price_id: Optional[str], product_id: Optional[str]) -> Optional[CatalogEntry]:
        return self.entries.get(price_id or "") or self.entries.get(product_id or "")
