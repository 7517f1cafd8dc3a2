"""Residents' preferences, stored under their pseudonym."""

from __future__ import annotations

from typing import Protocol

from cachetools import TTLCache

from bot.i18n import SUPPORTED_LANGUAGES, pick_language

_NOT_CHOSEN = ""


class ResidentStorage(Protocol):  # storage/residents.py
    async def language(self, pseudonym: str) -> str | None: ...
    async def set_language(self, pseudonym: str, language: str) -> None: ...
    async def set_subscribed(self, pseudonym: str, subscribed: bool) -> None: ...


class ResidentPreferences:
    """Every message a resident sends is answered in their language, so the stored choice is
    kept in memory briefly (it changes only through ``set_language`` here)."""

    def __init__(
        self, store: ResidentStorage, *, cache_seconds: float = 300, cache_size: int = 20_000
    ) -> None:
        self._store = store
        self._chosen: TTLCache[str, str] = TTLCache(maxsize=cache_size, ttl=cache_seconds)

    async def language(self, pseudonym: str, platform_language: str | None) -> str:
        """The stored choice, else derived from the app's language, else Vietnamese."""
        chosen = self._chosen.get(pseudonym)
        if chosen is None:
            chosen = await self._store.language(pseudonym) or _NOT_CHOSEN
            self._chosen[pseudonym] = chosen
        return pick_language(chosen or None, platform_language)

    async def set_language(self, pseudonym: str, language: str) -> None:
        if language not in SUPPORTED_LANGUAGES:
            raise ValueError(f"unsupported language {language!r}")
        await self._store.set_language(pseudonym, language)
        self._chosen[pseudonym] = language

    async def set_subscribed(self, pseudonym: str, subscribed: bool) -> None:
        """Campaign opt-in/opt-out (used by the campaign scheduler)."""
        await self._store.set_subscribed(pseudonym, subscribed)
