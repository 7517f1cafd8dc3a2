"""Translations from gettext catalogs (``bot/locales/<lang>/LC_MESSAGES/messages.po``).

Message ids are the English sentences; the Vietnamese catalog translates them. Catalogs are
read with Babel once at start-up (no compiled .mo files to keep in sync). Extract new strings
with ``pybabel extract -k _ -k N_ -o messages.pot bot handlers`` and merge them into the catalogs.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from babel.messages.pofile import read_po

SUPPORTED_LANGUAGES = ("vi", "en")
DEFAULT_LANGUAGE = "vi"
LOCALES_DIR = Path(__file__).with_name("locales")

Gettext = Callable[[str], str]


def N_(message: str) -> str:
    """Mark a string for extraction without translating it yet."""
    return message


def pick_language(stored: str | None, platform_language: str | None) -> str:
    """A stored choice wins; else English for English-language apps; else Vietnamese."""
    if stored in SUPPORTED_LANGUAGES:
        return stored
    if platform_language and platform_language.lower().startswith("en"):
        return "en"
    return DEFAULT_LANGUAGE


class Translator:
    """Looks up translations; unknown ids fall back to the English id itself."""

    def __init__(self, catalogs: dict[str, dict[str, str]]) -> None:
        self._catalogs = catalogs

    @classmethod
    def load(cls, locales_dir: Path = LOCALES_DIR) -> Translator:
        catalogs: dict[str, dict[str, str]] = {}
        for language in SUPPORTED_LANGUAGES:
            path = locales_dir / language / "LC_MESSAGES" / "messages.po"
            with path.open("rb") as handle:
                catalog = read_po(handle, locale=language)
            catalogs[language] = {
                str(m.id): str(m.string)
                for m in catalog
                if m.id and m.string and not m.fuzzy and isinstance(m.id, str)
            }
        return cls(catalogs)

    def gettext(self, language: str, message: str) -> str:
        return self._catalogs.get(language, {}).get(message, message)

    def for_language(self, language: str) -> Gettext:
        """A ``_`` function bound to one language."""
        catalog = self._catalogs.get(language, {})
        return lambda message: catalog.get(message, message)

    def translated_ids(self, language: str) -> set[str]:
        return set(self._catalogs.get(language, {}))
