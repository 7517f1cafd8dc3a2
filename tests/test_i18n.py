"""Every user-facing string in the code has a Vietnamese translation with the same
placeholders, and the catalogs load."""

from __future__ import annotations

import re
from pathlib import Path

from babel.messages.extract import extract_from_dir

from bot.i18n import Translator, pick_language

ROOT = Path(__file__).resolve().parents[1]
PLACEHOLDER = re.compile(r"\{[a-z_]+\}")


def _messages_in_code() -> set[str]:
    found: set[str] = set()
    for folder in ("bot", "handlers"):
        for _file, _line, message, _comments, _context in extract_from_dir(
            ROOT / folder, method_map=[("**.py", "python")], keywords={"_": None, "N_": None}
        ):
            if isinstance(message, str):
                found.add(message)
    return found


def test_every_message_has_a_vietnamese_translation() -> None:
    translator = Translator.load()
    messages = _messages_in_code()
    assert len(messages) > 50
    missing = sorted(messages - translator.translated_ids("vi"))
    assert missing == []


def test_translations_keep_the_placeholders() -> None:
    translator = Translator.load()
    for message in _messages_in_code():
        vi = translator.gettext("vi", message)
        assert sorted(PLACEHOLDER.findall(vi)) == sorted(PLACEHOLDER.findall(message)), message


def test_english_falls_back_to_the_source_text() -> None:
    translator = Translator.load()
    assert translator.gettext("en", "Your tips:") == "Your tips:"
    assert translator.gettext("vi", "Your tips:") == "Tin báo của bạn:"


def test_language_choice() -> None:
    assert pick_language(None, None) == "vi"
    assert pick_language(None, "en-GB") == "en"
    assert pick_language(None, "fr") == "vi"
    assert pick_language("vi", "en") == "vi"
    assert pick_language("xx", "en") == "en"
