"""Residents' preferences, stored under their pseudonym."""

from __future__ import annotations

from bot.i18n import SUPPORTED_LANGUAGES, pick_language
from storage import repositories as repo
from storage.db import Database


class ResidentPreferences:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def language(self, pseudonym: str, platform_language: str | None) -> str:
        """The stored choice, else derived from the app's language, else Vietnamese."""
        async with self._db.session() as session:
            row = await repo.resident(session, pseudonym=pseudonym)
        return pick_language(row.language if row else None, platform_language)

    async def set_language(self, pseudonym: str, language: str) -> None:
        if language not in SUPPORTED_LANGUAGES:
            raise ValueError(f"unsupported language {language!r}")
        async with self._db.transaction() as session:
            await repo.upsert_resident(session, pseudonym=pseudonym, language=language)

    async def set_subscribed(self, pseudonym: str, subscribed: bool) -> None:
        """Campaign opt-in/opt-out (used by the campaign scheduler)."""
        async with self._db.transaction() as session:
            await repo.upsert_resident(session, pseudonym=pseudonym, subscribed=subscribed)
