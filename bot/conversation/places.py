"""Place names as they read inside a sentence: "Công an xã Phúc Khánh", "gửi cho: xã Phúc
Khánh, tỉnh Lào Cai". The official names start with a capitalised division word ("Xã Phúc
Khánh", "Tỉnh Lào Cai"); in running text, as on the posters and group names, it is lower
case. Buttons and lists that start with the name keep it capitalised."""

from __future__ import annotations

from bot.domain.communes import Commune, Province

# division words of communes and provinces, longest first ("thành phố" before "phường")
_DIVISION_WORDS = ("thành phố ", "đặc khu ", "phường ", "tỉnh ", "xã ")


def in_sentence(name: str) -> str:
    """ "Xã Phúc Khánh" -> "xã Phúc Khánh"; a name without a division word stays as it is.

    >>> in_sentence("Phường Ba Đình"), in_sentence("Tỉnh Lào Cai"), in_sentence("Hà Nội")
    ('phường Ba Đình', 'tỉnh Lào Cai', 'Hà Nội')
    """
    lowered = name.lower()
    for word in _DIVISION_WORDS:
        if lowered.startswith(word):
            return word + name[len(word):]
    return name


def place_in_sentence(commune: Commune | None, province: Province | None) -> str:
    """ "xã Phúc Khánh, tỉnh Lào Cai" (plain text; escape it for HTML); "?" when unknown."""
    if commune is None:
        return "?"
    parts = [in_sentence(commune.name)] + ([in_sentence(province.name)] if province else [])
    return ", ".join(parts)
