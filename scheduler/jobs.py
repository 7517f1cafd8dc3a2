"""Recurring jobs, run by PTB's JobQueue (APScheduler 3.x underneath).

Each job is a thin wrapper over a domain function; all are idempotent, so a missed or
repeated run does no harm (APScheduler's default misfire handling is fine here). The
rounds (reminders, escalations, summaries, the campaigns' day-before heads-up) are not
APScheduler jobs of their own: one tick asks ``RoundEngine.run_due(now)`` which rounds are
due, with ``now`` from the services' clock; their slots, the misfire grace and "never
twice" live in our ``job_runs`` table (bot/domain/rounds.py), so a restart catches up by
itself and nothing is pickled.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from bot.context import TiplineApplication, TiplineContext
from storage.areas import boundaries_version, load_locator
from storage.retention import purge_handled_updates, purge_reporter_links

log = logging.getLogger(__name__)


async def purge_drafts(context: TiplineContext) -> None:
    """Abandoned drafts (idle longer than the draft TTL) are deleted with their pictures."""
    count = await context.services.intake.purge_expired_drafts()
    if count:
        log.info("expired drafts deleted", extra={"count": count})


async def purge_identities(context: TiplineContext) -> None:
    """Reporter links past retention, and handled webhook payloads."""
    await purge_reporter_links(context.services.db)
    await purge_handled_updates(context.services.db)


async def reload_boundaries(context: TiplineContext) -> None:
    """Pick up boundaries imported with `python -m bot geo import` without a restart
    (only when the table changed: a reload rebuilds the whole index)."""
    services = context.services
    version = await boundaries_version(services.db)
    if version != services.boundaries_version:
        services.locator = await load_locator(services.db)
        services.boundaries_version = version
        log.info("commune boundaries reloaded", extra={"count": version[0]})


async def rounds_tick(context: TiplineContext) -> None:
    """The due rounds (each sends its digests through the outbox), then the "⚠️ Quá hạn"
    mark on the cards of tips that just went past a deadline."""
    services = context.services
    now = services.clock.now()
    await services.rounds.run_due(now)
    if await services.reminders.mark_overdue(now):
        services.outbox.wake()


def schedule_rounds(application: TiplineApplication, tick_seconds: float) -> None:
    """The rounds' tick: soon after start (a round missed while down is run then), then
    every ``tick_seconds``."""
    job_queue = application.job_queue
    assert job_queue is not None
    job_queue.run_repeating(
        rounds_tick, interval=timedelta(seconds=tick_seconds), first=min(tick_seconds, 5.0),
        name=rounds_tick.__name__,
    )


def schedule_housekeeping(application: TiplineApplication) -> None:
    job_queue = application.job_queue
    assert job_queue is not None
    for callback, interval, first in (
        (purge_drafts, timedelta(minutes=10), 60),
        (purge_identities, timedelta(hours=1), 120),
        (reload_boundaries, timedelta(minutes=10), 600),
    ):
        job_queue.run_repeating(
            callback, interval=interval, first=first, name=callback.__name__
        )


# --- campaigns (issue 11) -------------------------------------------------------------------

CAMPAIGN_TICK_SECONDS = 60


async def campaign_tick(context: TiplineContext) -> None:
    """Start the campaigns that are due (built-in yearly ones, custom ones added from the CLI
    or the admins' chat), drive running broadcasts (also those left running by a crash).
    Idempotent: runs are rows, (campaign, year) unique. The day-before heads-up is a round
    (``rounds_tick``), not this tick's."""
    await context.services.campaigns.tick()


def schedule_campaigns(application: TiplineApplication) -> None:
    job_queue = application.job_queue
    assert job_queue is not None
    job_queue.run_repeating(
        campaign_tick, interval=timedelta(seconds=CAMPAIGN_TICK_SECONDS), first=1,
        name=campaign_tick.__name__,
    )
