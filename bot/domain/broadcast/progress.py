"""Progress of a run: a text bar (the CLI's ``status --follow`` and the admins' chat) and the
admins' chat message, edited in place at most once per ``min_seconds``."""

from __future__ import annotations

import html
import time

from bot.domain.broadcast.records import CampaignRecord, RunCounts, RunRecord
from bot.domain.broadcast.store import BroadcastStore
from bot.domain.outbox.transport import Buttons, DeliveryError, Transport
from bot.i18n import Gettext

BAR_WIDTH = 20


def progress_bar(done: int, total: int, width: int = BAR_WIDTH) -> str:
    """``[██████░░░░░░░░░░░░░░]  30%``"""
    share = 1.0 if total <= 0 else min(max(done / total, 0.0), 1.0)
    filled = round(share * width)
    return f"[{'█' * filled}{'░' * (width - filled)}] {share * 100:3.0f}%"


def eta_seconds(counts: RunCounts, rate: float) -> float | None:
    return counts.remaining / rate if rate > 0 and counts.remaining else None


def format_eta(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    minutes, secs = divmod(int(seconds + 0.5), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def run_buttons(run: RunRecord, _: Gettext) -> Buttons:
    if run.status == "running":
        return [[(_("⏸ Pause"), f"cp:pause:{run.campaign_id}"),
                 (_("✖ Cancel"), f"cp:cancel:{run.campaign_id}")]]
    if run.status == "paused":
        return [[(_("▶ Resume"), f"cp:resume:{run.campaign_id}"),
                 (_("✖ Cancel"), f"cp:cancel:{run.campaign_id}")]]
    return []


def progress_text(
    campaign: CampaignRecord, run: RunRecord, counts: RunCounts, rate: float, _: Gettext
) -> str:
    status = {"running": _("sending"), "paused": _("paused"), "cancelled": _("cancelled"),
              "done": _("finished")}.get(run.status, run.status)
    return "\n".join([
        "📢 <b>" + html.escape(campaign.title) + "</b> (#" + str(campaign.id) + ", "
        + str(run.year) + ") – " + status,
        "<code>" + progress_bar(counts.done, counts.audience) + "</code>",
        _("Sent {sent} · failed {failed} · unreachable {inactive} · remaining {remaining}")
        .format(sent=counts.sent, failed=counts.failed, inactive=counts.inactive,
                remaining=counts.remaining),
        _("Rate {rate:.1f}/s · time left {eta}").format(
            rate=rate, eta=format_eta(eta_seconds(counts, rate))),
    ])


class ChatProgress:
    """One message in the admins' chat per run, edited in place (at most once per
    ``min_seconds``; the final state always)."""

    def __init__(
        self, transport: Transport, chat_id: int | None, store: BroadcastStore, _: Gettext,
        *, min_seconds: float = 5.0,
    ) -> None:
        self._transport = transport
        self._chat_id = chat_id
        self._store = store
        self._ = _
        self._min = min_seconds
        self._last: dict[int, float] = {}

    async def progress(
        self, campaign: CampaignRecord, run: RunRecord, counts: RunCounts, rate: float,
        *, final: bool,
    ) -> None:
        if self._chat_id is None:
            return
        now = time.monotonic()
        if not final and now - self._last.get(run.id, -1e9) < self._min:
            return
        self._last[run.id] = now
        text = progress_text(campaign, run, counts, rate, self._)
        buttons = run_buttons(run, self._)
        try:
            if run.progress_message_id is not None and run.progress_chat_id == self._chat_id:
                await self._transport.edit_html(self._chat_id, run.progress_message_id, text,
                                                buttons=buttons)
                return
            message_id = await self._transport.send_html(self._chat_id, text, buttons=buttons)
        except DeliveryError:
            return
        await self._store.set_progress_message(run.id, self._chat_id, message_id)
