"""The table of Bot API methods the sandbox implements (names are case-insensitive)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from .params import Params
from .world import World

Handler = Callable[[World, Params], Awaitable[Any]]

METHODS: dict[str, tuple[str, Handler]] = {}


def method(name: str) -> Callable[[Handler], Handler]:
    """Register the decorated coroutine as the Bot API method `name`."""

    def register(handler: Handler) -> Handler:
        METHODS[name.lower()] = (name, handler)
        return handler

    return register


def lookup(name: str) -> tuple[str, Handler] | None:
    """The canonical name and handler of a method, if implemented."""
    return METHODS.get(name.lower())
