"""CPU of the outbox's card sends on the bot's side: PTB's typed ``send_message`` (what the
outbox uses) against PTB's public ``Bot.do_api_request`` with a plain dict and no return
type (what the outbox's removed raw-call path amounted to, issue 9.4).

Plain script (not a test). No network: PTB's ``Bot`` with a request object that answers at
once with a canned Bot API answer, so only the bot's own work is timed (building the call,
JSON, parsing the answer). The two paths alternate in blocks in one process; CPU time
(``time.process_time``) per call, median of the blocks.

    .venv/bin/python bench/bench_transport.py [--calls 2000] [--blocks 10]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from typing import Any

from telegram import Bot
from telegram.request import BaseRequest, RequestData

from bot.telegram_transport import TelegramTransport

CARD = "📥 <b>Tin báo</b> <code>AB12CD</code>\n" + "Nội dung sự việc. " * 40
BUTTONS = [[("✅ Tiếp nhận", "t:1:ack")], [("❓ Hỏi thêm", "t:1:ask"),
                                          ("🚫 Không hợp lệ", "t:1:invalid")]]


class Instant(BaseRequest):
    """Answers every call at once, like Telegram would (a sent message with its keyboard)."""

    def __init__(self) -> None:
        me = {"id": 1, "is_bot": True, "first_name": "bench", "username": "bench_bot"}
        self._me = json.dumps({"ok": True, "result": me}).encode()
        self._sent = json.dumps({"ok": True, "result": {
            "message_id": 7, "date": 1_700_000_000, "text": CARD,
            "chat": {"id": -100123, "type": "supergroup", "title": "Công an xã"},
            "from": me,
            "reply_markup": {"inline_keyboard": [
                [{"text": label, "callback_data": data} for label, data in row]
                for row in BUTTONS]},
        }}).encode()

    @property
    def read_timeout(self) -> float | None:
        return 5.0

    async def initialize(self) -> None:
        return None

    async def shutdown(self) -> None:
        return None

    async def do_request(self, url: str, method: str, request_data: RequestData | None = None,
                         *args: Any, **kwargs: Any) -> tuple[int, bytes]:
        return 200, self._me if url.endswith("getMe") else self._sent


async def raw_send(bot: Bot, chat_id: int) -> int:
    """A plain dict each way, no PTB objects built (``return_type=None``)."""
    call = {"chat_id": chat_id, "text": CARD, "parse_mode": "HTML", "reply_markup": {
        "inline_keyboard": [[{"text": label, "callback_data": data} for label, data in row]
                            for row in BUTTONS]}}
    sent: Any = await bot.do_api_request("sendMessage", api_kwargs=call)
    return int(sent["message_id"])


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--blocks", type=int, default=10)
    args = parser.parse_args()
    bot = Bot("1:bench", request=Instant(), get_updates_request=Instant())
    await bot.initialize()
    transport = TelegramTransport(bot)
    typed: list[float] = []
    raw: list[float] = []
    for block in range(args.blocks * 2 + 1):
        started = time.process_time()
        for _ in range(args.calls):
            if block % 2:
                await transport.send_html(-100123, CARD, buttons=BUTTONS)
            else:
                await raw_send(bot, -100123)
        per_call = (time.process_time() - started) / args.calls * 1000
        if block:  # the first block warms up
            (typed if block % 2 else raw).append(per_call)
    print(f"CPU per card send, median of {args.blocks} blocks of {args.calls} calls:")
    print(f"  raw do_api_request : {statistics.median(raw):.3f} ms "
          f"[{min(raw):.3f}–{max(raw):.3f}]")
    print(f"  typed send_message : {statistics.median(typed):.3f} ms "
          f"[{min(typed):.3f}–{max(typed):.3f}]")


if __name__ == "__main__":
    asyncio.run(main())
