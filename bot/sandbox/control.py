"""HTTP control API and web chat page (filled in by a later slice)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    from .server import BotApiSandbox


def add_control_routes(app: web.Application, sandbox: BotApiSandbox) -> None:
    """Register `/`, `/static/*` and `/sandbox/api/*`."""
