"""Campaigns: the built-in yearly ones (bot/domain/campaigns.json, data not code) and the
scheduler's tick that starts what is due and drives the runs.

``CampaignScheduler.tick()`` runs every minute (scheduler/jobs.py, PTB JobQueue) and once
at start-up, with the injectable clock:

- a built-in campaign is due on its day at ``send_time`` (08:00 ICT by default) and until
  ``grace`` later, never past that local day: a bot down from 07:00 to 09:00 sends it when
  it is back; its ``(campaign, year)`` run row is created once, so never twice;
- the day before, at the same time, each commune police group linked gets a heads-up
  ("Ngày mai có chiến dịch…"): not from this tick but as a round (``heads_up_job``, job
  ``campaign_eve``, docs/rounds.md), so it is claimed once per (group, day) with its outbox
  row, retried by the outbox, sent after due tip cards, and caught up after a restart
  within the rounds' grace;
- a custom campaign (CLI or the admins' chat) is due at its ``send_at``; past ``grace`` it
  expires unsent. Added from the CLI, it is picked up by the next tick (no restart);
- every run still *running* without an engine in this process (a restart after a crash,
  or ``resume`` from the CLI) gets one.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import html
import json
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from importlib import resources
from typing import Any
from zoneinfo import ZoneInfo

from bot.domain.broadcast.engine import BroadcastEngine
from bot.domain.broadcast.images import render_campaign_image
from bot.domain.broadcast.store import CampaignStore
from bot.domain.clock import Clock
from bot.domain.rounds import DailySchedule, Digest, Group, RoundJob, RoundWindow, split_lines
from bot.i18n import Gettext

log = logging.getLogger("bot.domain.broadcast")
HEADS_UP_JOB = "campaign_eve"


@dataclass(frozen=True, slots=True)
class BuiltinCampaign:
    key: str
    month: int
    day: int
    title: str
    text_vi: str
    text_en: str
    image: dict[str, Any]

    def day_in(self, year: int) -> date:
        return date(year, self.month, self.day)


def load_builtins(text: str | None = None) -> list[BuiltinCampaign]:
    data = json.loads(text if text is not None else resources.files("bot.domain").joinpath(
        "campaigns.json").read_text(encoding="utf-8"))
    return [BuiltinCampaign(c["key"], int(c["month"]), int(c["day"]), c["title"],
                            c["text"]["vi"], c["text"]["en"], c["image"])
            for c in data["campaigns"]]


def parse_send_time(text: str) -> time:
    hours, minutes = text.split(":")
    return time(int(hours), int(minutes))


class CampaignScheduler:
    def __init__(
        self, store: CampaignStore, engine: BroadcastEngine, clock: Clock, zone: ZoneInfo,
        police_texts: Gettext, *, send_time: time = time(8, 0),
        grace: timedelta = timedelta(hours=6), builtins: list[BuiltinCampaign] | None = None,
    ) -> None:
        self.store = store
        self.engine = engine
        self._clock = clock
        self._zone = zone
        self._ = police_texts
        self.send_time = send_time
        self.grace = grace
        self.builtins = builtins if builtins is not None else load_builtins()
        self._ids: dict[str, int] = {}
        self._drives: dict[int, asyncio.Task[str]] = {}
        self._lock = asyncio.Lock()

    async def sync_builtins(self) -> None:
        """The built-in campaigns' rows (pictures drawn once, on first use)."""
        now = self._clock.now()
        for builtin in self.builtins:
            photo = await asyncio.to_thread(render_campaign_image, builtin.image)
            self._ids[builtin.key] = await self.store.sync_builtin(
                builtin.key, builtin.title, builtin.text_vi, builtin.text_en, photo, now)

    async def stop(self) -> None:
        for task in list(self._drives.values()):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._drives.clear()

    def _window(self, day: date) -> tuple[datetime, datetime]:
        start = datetime.combine(day, self.send_time, self._zone)
        end_of_day = datetime.combine(day + timedelta(days=1), time(0, 0), self._zone)
        return start, min(start + self.grace, end_of_day)

    async def tick(self) -> list[int]:
        """Start what is due, drive what runs; the ids of runs started by this tick."""
        async with self._lock:
            if not self._ids:
                await self.sync_builtins()
            now = self._clock.now()
            today = now.astimezone(self._zone).date()
            started: list[int] = []
            for builtin in self.builtins:
                campaign_id = self._ids[builtin.key]
                for year in (today.year, today.year + 1):  # 31/12 is the eve of 1/1
                    start, end = self._window(builtin.day_in(year))
                    if start <= now < end:
                        run_id = await self.store.start_run(campaign_id, year, now)
                        if run_id is not None:
                            log.info("campaign run started", extra={
                                "event": builtin.key, "run_id": run_id})
                            started.append(run_id)
            for campaign in await self.store.due_customs(now):
                assert campaign.send_at is not None
                if now >= campaign.send_at + self.grace:
                    await self.store.set_status(campaign.id, "expired", only_from=["scheduled"])
                    log.warning("custom campaign expired unsent",
                                extra={"event": "expired", "count": campaign.id})
                    continue
                year = campaign.send_at.astimezone(self._zone).year
                run_id = await self.store.start_run(campaign.id, year, now)
                if run_id is not None:
                    started.append(run_id)
                else:  # resumed after a pause: its run exists and is driven below
                    await self.store.set_status(campaign.id, "running", only_from=["scheduled"])
            for run in await self.store.runs_to_drive():
                self.drive(run.id)
            return started

    def drive(self, run_id: int) -> asyncio.Task[str]:
        task = self._drives.get(run_id)
        if task is None or task.done():
            task = asyncio.create_task(self.engine.run(run_id), name=f"broadcast-{run_id}")
            self._drives[run_id] = task
            task.add_done_callback(functools.partial(self._drive_done, run_id))
        return task

    def _drive_done(self, run_id: int, task: asyncio.Task[str]) -> None:
        if self._drives.get(run_id) is task:
            del self._drives[run_id]
        if not task.cancelled() and task.exception() is not None:
            log.error("broadcast run failed", exc_info=task.exception(),
                      extra={"run_id": run_id})

    async def wait_idle(self) -> None:
        """Until every run being driven here has stopped (tests, the CLI's demo)."""
        while self._drives:
            await asyncio.gather(*self._drives.values(), return_exceptions=True)


def heads_up_job(
    builtins: Sequence[BuiltinCampaign], groups: Callable[[], Awaitable[Sequence[Group]]],
    *, at: time, zone: ZoneInfo, police_texts: Gettext,
) -> RoundJob:
    """The day-before heads-up as a round (job ``campaign_eve``): a slot every day at the
    campaign send time ``at`` in ``zone``; on the eve of a built-in campaign every linked
    commune group gets "📣 Ngày mai có chiến dịch…" (one digest each, through the outbox),
    on other days the round sends nothing. A slot caught up after a restart (within the
    rounds' grace) still says "tomorrow" only on the eve itself, never the day after."""
    _ = police_texts

    async def compose(window: RoundWindow, now: datetime) -> list[Digest]:
        today = now.astimezone(zone).date()
        if not any(slot.at.astimezone(zone).date() == today for slot in window.slots):
            return []  # a slot of an earlier day, coalesced: its "tomorrow" is today
        tomorrow = today + timedelta(days=1)
        lines = ["📣 " + _("Tomorrow is a campaign day: expect more tips than usual ({title}).")
                 .format(title=html.escape(builtin.title))
                 for builtin in builtins
                 if (builtin.month, builtin.day) == (tomorrow.month, tomorrow.day)]
        if not lines:
            return []
        parts = tuple(split_lines("", lines))
        return [Digest(group.chat_id, parts) for group in await groups()
                if group.scope == "commune"]

    return RoundJob(HEADS_UP_JOB, DailySchedule(at, zone), compose)


COMMANDS = ("confirm", "pause", "resume", "cancel")


async def control(store: CampaignStore, campaign_id: int, command: str) -> bool:
    """``confirm`` a draft (it is then due at its time), ``pause`` / ``resume`` / ``cancel``
    a campaign and its latest run; False if nothing was in a state to change. Used by the
    CLI and the admins' chat; the running bot's tick and engines read the new state."""
    run = await store.latest_run(campaign_id)
    if command == "confirm":
        return await store.set_status(campaign_id, "scheduled", only_from=["draft"])
    if command == "pause":
        changed = await store.set_status(campaign_id, "paused", only_from=["scheduled"])
        if run is not None:
            changed = await store.set_run_status(run.id, "paused", only_from=["running"]) \
                or changed
        return changed
    if command == "resume":
        changed = await store.set_status(campaign_id, "scheduled", only_from=["paused"])
        if run is not None:
            changed = await store.set_run_status(run.id, "running", only_from=["paused"]) \
                or changed
        return changed
    if command == "cancel":
        changed = await store.set_status(
            campaign_id, "cancelled", only_from=["draft", "scheduled", "paused", "running"])
        if run is not None:
            changed = await store.set_run_status(
                run.id, "cancelled", only_from=["running", "paused"]) or changed
        return changed
    raise ValueError(f"unknown campaign command {command!r}")
