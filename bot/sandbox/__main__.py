"""Run a bare Bot API sandbox (no bot attached): `python -m bot.sandbox --port 8081`.

Point any Telegram bot at the printed base URL and token, then act as people in the web chat
page. The tip-line's own demo mode (bot + seeded world) lives in `bot.sandbox_mode`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib

from .models import RateLimits
from .server import BotApiSandbox


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bot.sandbox", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8081)
    parser.add_argument("--no-rate-limits", action="store_true", help="disable flood limits")
    return parser.parse_args()


async def _serve(args: argparse.Namespace) -> None:
    sandbox = BotApiSandbox(limits=RateLimits(enabled=not args.no_rate_limits))
    await sandbox.start(args.host, args.port)
    sandbox.create_user("Dung", last_name="Phạm Thị", username="dung_pham")
    officer = sandbox.create_user("An", last_name="Nguyễn Văn", username="canbo_an")
    sandbox.create_group("Công an xã – tin báo", admins=[officer.id])
    print(
        f"Bot API sandbox on {sandbox.url}/ (web chat page)\n"
        f"  base_url      {sandbox.base_url}\n"
        f"  base_file_url {sandbox.base_file_url}\n"
        f"  token         {sandbox.token}\n"
        "Stop with Ctrl+C.",
        flush=True,
    )
    try:
        await asyncio.Event().wait()
    finally:
        await sandbox.stop()


def main() -> None:
    """Entry point of `python -m bot.sandbox`."""
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(_arguments()))


if __name__ == "__main__":
    main()
