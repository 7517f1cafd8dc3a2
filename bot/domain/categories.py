"""Tip categories: data (categories.json), not code. Keys are short and ASCII so they fit
in callback data; labels are per language."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

CATEGORIES_FILE = Path(__file__).with_name("categories.json")


@dataclass(frozen=True, slots=True)
class Category:
    key: str
    labels: dict[str, str]

    def label(self, language: str) -> str:
        return self.labels.get(language) or self.labels["vi"]


class Categories:
    def __init__(self, categories: list[Category]) -> None:
        self._by_key = {c.key: c for c in categories}

    @classmethod
    def load(cls, path: Path = CATEGORIES_FILE) -> Categories:
        rows = json.loads(path.read_text(encoding="utf-8"))
        items = [Category(r["key"], {k: v for k, v in r.items() if k != "key"}) for r in rows]
        for item in items:
            if not item.key.isascii() or len(item.key) > 20 or "vi" not in item.labels:
                raise ValueError(f"bad category entry {item.key!r} in {path}")
        return cls(items)

    def all(self) -> list[Category]:
        return list(self._by_key.values())

    def get(self, key: str) -> Category | None:
        return self._by_key.get(key)
