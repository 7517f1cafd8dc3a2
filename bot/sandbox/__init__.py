"""A local Telegram Bot API sandbox: real python-telegram-bot over HTTP, no Telegram needed.

Used by the test suite and by the no-token demo mode (with a web chat page at `/`).
"""

from .models import FloodCounts, RateLimits, SandboxChat, SandboxUser
from .server import BotApiSandbox

__all__ = ["BotApiSandbox", "FloodCounts", "RateLimits", "SandboxChat", "SandboxUser"]
