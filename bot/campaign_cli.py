"""``python -m bot campaign ...``: custom campaigns from a shell, and the state of any
campaign. Writes go to the database the running bot reads: its minute tick picks a new or
resumed campaign up without a restart.

    campaign add --text-file F [--photo P] [--scope all|province:CODE|commune:CODE]
                 [--at "YYYY-MM-DD HH:MM"|now] [--title T]     prints the campaign id
    campaign list
    campaign status ID [--follow]      sent / failed / unreachable / remaining, rate, ETA
    campaign pause|resume|cancel ID
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from datetime import datetime
from pathlib import Path

from bot.domain.broadcast.campaigns import control
from bot.domain.broadcast.images import clean_announcement_photo
from bot.domain.broadcast.progress import format_eta, progress_bar
from bot.domain.broadcast.records import RunCounts, RunRecord
from bot.domain.clock import SystemClock
from bot.domain.communes import CommuneDirectory
from bot.settings import Settings
from storage import migrate
from storage.campaigns import CampaignsStore
from storage.db import Database

MAX_TEXT = 4096
MAX_CAPTION = 1024


class CliError(Exception):
    """One sentence for stderr, exit code 2."""


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    campaign = commands.add_parser("campaign", help="awareness campaigns (broadcasts)")
    sub = campaign.add_subparsers(dest="campaign_command", required=True)
    add = sub.add_parser("add", help="add a custom campaign; prints its id")
    add.add_argument("--text-file", type=Path, required=True)
    add.add_argument("--photo", type=Path)
    add.add_argument("--scope", default="all", help="all | province:CODE | commune:CODE")
    add.add_argument("--at", default="now", help='"YYYY-MM-DD HH:MM" (local time) or now')
    add.add_argument("--title", help="shown in lists and progress (default: first line)")
    sub.add_parser("list", help="all campaigns and their latest run")
    status = sub.add_parser("status", help="progress of a campaign's latest run")
    status.add_argument("id", type=int)
    status.add_argument("--follow", action="store_true", help="a live progress bar")
    for name in ("pause", "resume", "cancel"):
        sub.add_parser(name, help=f"{name} a campaign").add_argument("id", type=int)


def run(settings: Settings, args: argparse.Namespace) -> int:
    try:
        return asyncio.run(_run(settings, args))
    except CliError as error:
        print(error, file=sys.stderr)
        return 2


async def _run(settings: Settings, args: argparse.Namespace) -> int:
    db = Database(settings.database_url)
    try:
        await migrate.upgrade(db)
        store = CampaignsStore(db)
        command = args.campaign_command
        if command == "add":
            print(await add(store, settings, args))
        elif command == "list":
            await list_campaigns(store, settings)
        elif command == "status":
            await status(store, args.id, follow=args.follow)
        else:
            print(await change(store, args.id, command))
    finally:
        await db.close()
    return 0


def parse_scope(text: str, directory: CommuneDirectory) -> tuple[str, int | None]:
    if text == "all":
        return "all", None
    kind, _sep, code = text.partition(":")
    if kind not in ("province", "commune") or not code.isdigit():
        raise CliError(f"--scope must be all, province:CODE or commune:CODE (not {text!r}).")
    known = (directory.province(int(code)) if kind == "province"
             else directory.commune(int(code)))
    if known is None:
        raise CliError(f"No {kind} has code {code}.")
    return kind, int(code)


def clean_photo(data: bytes) -> bytes:
    try:
        return clean_announcement_photo(data)
    except ValueError as error:
        raise CliError(f"The photo cannot be used: {error}.") from None


async def add(store: CampaignsStore, settings: Settings, args: argparse.Namespace) -> int:
    try:
        text = args.text_file.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as error:
        raise CliError(f"Cannot read {args.text_file}: {error}.") from None
    if not text:
        raise CliError("The text file is empty.")
    photo = None
    if args.photo is not None:
        try:
            photo = clean_photo(args.photo.read_bytes())
        except OSError as error:
            raise CliError(f"Cannot read {args.photo}: {error}.") from None
    limit = MAX_CAPTION if photo else MAX_TEXT
    if len(text) > limit:
        raise CliError(f"The text has {len(text)} characters; at most {limit}"
                       + (" with a photo (a caption)." if photo else "."))
    scope, code = parse_scope(args.scope, CommuneDirectory.load())
    now = SystemClock().now()
    if args.at == "now":
        send_at = now
    else:
        try:
            local = datetime.strptime(args.at, "%Y-%m-%d %H:%M")
        except ValueError:
            raise CliError('--at must be "YYYY-MM-DD HH:MM" or now.') from None
        send_at = local.replace(tzinfo=settings.zone)
    title = args.title or text.splitlines()[0][:80]
    return await store.add_custom(title=title, text=text, photo=photo, scope=scope,
                                  scope_code=code, send_at=send_at, status="scheduled",
                                  created_by=None, now=now)


async def list_campaigns(store: CampaignsStore, settings: Settings) -> None:
    print(f"{'ID':>4}  {'KIND':8} {'STATUS':10} {'SCOPE':16} {'WHEN':16}  {'SENT':>7}  TITLE")
    for campaign in await store.campaigns():
        run = await store.latest_run(campaign.id)
        counts = await store.counts(run.id) if run is not None else RunCounts()
        when = (campaign.send_at.astimezone(settings.zone).strftime("%Y-%m-%d %H:%M")
                if campaign.send_at else "yearly")
        state = run.status if run is not None and campaign.kind == "builtin" else campaign.status
        print(f"{campaign.id:>4}  {campaign.kind:8} {state:10} {campaign.scope_label:16} "
              f"{when:16}  {counts.sent:>7}  {campaign.title}")


def _rate(run: RunRecord, counts: RunCounts) -> float:
    end = run.finished_at or SystemClock().now()
    seconds = (end - run.started_at).total_seconds()
    return counts.done / seconds if seconds > 0 else 0.0


def _line(run: RunRecord, counts: RunCounts, rate: float) -> str:
    eta = counts.remaining / rate if rate > 0 and counts.remaining else None
    return (f"{progress_bar(counts.done, counts.audience)}  sent {counts.sent}  failed "
            f"{counts.failed}  inactive {counts.inactive}  remaining {counts.remaining}  "
            f"{rate:.1f}/s  ETA {format_eta(eta)}  [{run.status}]")


async def status(store: CampaignsStore, campaign_id: int, *, follow: bool) -> None:
    campaign = await store.campaign(campaign_id)
    if campaign is None:
        raise CliError(f"No campaign has id {campaign_id}.")
    run = await store.latest_run(campaign_id)
    if run is None:
        print(f"#{campaign.id} {campaign.title}: {campaign.status}, not started yet.")
        return
    counts = await store.counts(run.id)
    print(f"#{campaign.id} {campaign.title} ({run.year})")
    if not follow:
        print(_line(run, counts, _rate(run, counts)))
        return
    samples: list[tuple[float, int]] = [(time.monotonic(), counts.done)]
    while True:
        first_t, first_done = samples[0]
        now = time.monotonic()
        rate = (counts.done - first_done) / (now - first_t) if now > first_t else 0.0
        sys.stdout.write("\r" + _line(run, counts, rate if len(samples) > 1 else
                                      _rate(run, counts)))
        sys.stdout.flush()
        if run.status != "running":
            break
        await asyncio.sleep(1.0)
        found = await store.run(run.id)
        if found is None:
            break
        run, counts = found, await store.counts(run.id)
        samples = [*samples[-9:], (time.monotonic(), counts.done)]  # ~10 s window
    sys.stdout.write("\n")


async def change(store: CampaignsStore, campaign_id: int, command: str) -> str:
    campaign = await store.campaign(campaign_id)
    if campaign is None:
        raise CliError(f"No campaign has id {campaign_id}.")
    changed = await control(store, campaign_id, command)
    done = {"pause": "paused", "resume": "resumed", "cancel": "cancelled"}[command]
    if not changed:
        return f"Campaign {campaign_id} was not changed (it is not in a state to be {done})."
    return f"Campaign {campaign_id} {done}."
