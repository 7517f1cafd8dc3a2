"""Receipt codes: what a resident keeps to follow a tip (``7K3Q-9MXD``).

Eight symbols of Crockford's base32 alphabet (no I, L, O, U) carry 40 random bits. Typing
mistakes that alphabet was designed for are forgiven: O -> 0, I/L -> 1, lower case, spaces.
"""

from __future__ import annotations

import secrets

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
CODE_SYMBOLS = 8  # 8 x 5 bits = 40 bits of randomness
_CONFUSABLE = str.maketrans({"O": "0", "I": "1", "L": "1", "U": "V"})


def new_code() -> str:
    symbols = "".join(secrets.choice(ALPHABET) for _ in range(CODE_SYMBOLS))
    return f"{symbols[:4]}-{symbols[4:]}"


TIP_LINK_PREFIX = "/tip_"


def tip_link(code: str) -> str:
    """``7K3Q-9MXD`` as the one-tap command ``/tip_7K3Q_9MXD``: Telegram shows a command in a
    message as a link that sends it (a command is letters, digits and underscores only)."""
    return TIP_LINK_PREFIX + code.replace("-", "_")


def code_of_tip_link(command: str) -> str | None:
    """The code in ``/tip_7K3Q_9MXD`` (or ``/tip_7K3Q_9MXD@SomeBot``), or None."""
    name = command.split("@", 1)[0]
    if not name.startswith(TIP_LINK_PREFIX):
        return None
    return normalise_code(name[len(TIP_LINK_PREFIX):])


def normalise_code(text: str) -> str | None:
    """The canonical form of a typed code, or None if it cannot be one."""
    cleaned = "".join(ch for ch in text.upper() if ch.isalnum()).translate(_CONFUSABLE)
    if len(cleaned) != CODE_SYMBOLS or any(ch not in ALPHABET for ch in cleaned):
        return None
    return f"{cleaned[:4]}-{cleaned[4:]}"
