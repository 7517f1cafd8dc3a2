"""The composition root: builds, starts and stops everything, in one place.

``TiplineRuntime`` owns the database engine, the PTB application, the web server and (later)
the scheduler. Nothing else creates clients or reads configuration.
"""

from __future__ import annotations

import asyncio
import errno
import json
import logging
from collections.abc import Awaitable
from dataclasses import dataclass
from datetime import timedelta
from http import HTTPStatus
from typing import cast

from telegram import Bot
from telegram.error import TelegramError, TimedOut
from telegram.ext import ApplicationBuilder, ContextTypes, Defaults

import handlers
from bot.context import BotData, Services, TiplineApplication, TiplineContext
from bot.conversation.texts import stop_button
from bot.domain.broadcast.campaigns import CampaignScheduler, heads_up_job, parse_send_time
from bot.domain.broadcast.engine import BroadcastEngine, BroadcastSettings
from bot.domain.broadcast.progress import ChatProgress
from bot.domain.broadcast.subscribers import Subscriptions
from bot.domain.cards import CardRenderer
from bot.domain.categories import Categories
from bot.domain.clock import Clock, SystemClock
from bot.domain.communes import CommuneDirectory
from bot.domain.deadlines import policy_from
from bot.domain.identity import Pseudonymizer
from bot.domain.intake import IntakeService
from bot.domain.kpi import KpiService, morning_summary_job
from bot.domain.linking import GroupLinking
from bot.domain.notices import ReporterNotices
from bot.domain.outbox import OutboxWorker
from bot.domain.picture_jobs import PictureJobs
from bot.domain.reminders import DigestTexts, ReminderPolicy, Reminders
from bot.domain.residents import ResidentPreferences
from bot.domain.rounds import RoundEngine
from bot.domain.routing import Router
from bot.domain.sealing import ChatSealer
from bot.domain.tips import TipQueries
from bot.domain.triage import TriageService
from bot.i18n import Translator
from bot.logs import quiet_identity_bearing_loggers
from bot.membership import TelegramMembership
from bot.ratelimit import TiplineRateLimiter, budget_of
from bot.settings import Settings, SettingsError
from bot.telegram_broadcast import TelegramBroadcastTransport
from bot.telegram_http import AiohttpRequest
from bot.telegram_transport import TelegramTransport
from bot.web import WebServer
from bot.webhook import WebhookInbox
from scheduler.jobs import schedule_campaigns, schedule_housekeeping, schedule_rounds
from storage import migrate
from storage.areas import boundaries_version, load_locator
from storage.campaigns import CampaignsStore
from storage.db import Database
from storage.groups import GroupStore
from storage.intake import IntakeStore
from storage.kpi import KpiStore
from storage.outbox_store import OutboxStore
from storage.residents import ResidentStore
from storage.rounds import RoundsStore
from storage.subscribers import SubscriberStore
from storage.tips import TipsStore
from storage.triage import TriageStore

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BotEndpoint:
    """Which Bot API server to talk to, with which token."""

    token: str
    api_url: str  # e.g. https://api.telegram.org or the sandbox's http://127.0.0.1:PORT

    @property
    def base_url(self) -> str:
        return f"{self.api_url}/bot"

    @property
    def base_file_url(self) -> str:
        return f"{self.api_url}/file/bot"


async def build_services(
    settings: Settings, secret_key: bytes, bot: Bot, clock: Clock
) -> Services:
    """Open the database (migrated to head), load reference data, build the services."""
    db = Database(settings.database_url)
    try:
        await migrate.upgrade(db)
        directory = await asyncio.to_thread(CommuneDirectory.load)
        locator = await load_locator(db)
        version = await boundaries_version(db)
    except BaseException:
        await db.close()
        raise
    categories = Categories.load()
    deadlines = policy_from(
        ack_hours=settings.ack_hours, urgent_ack_hours=settings.urgent_ack_hours,
        category_windows=categories.ack_windows(), zone=settings.zone,
    )
    router = Router(settings.ops_chat_id)
    translator = Translator.load()
    # police groups work in Vietnamese: the cards are rendered through that catalogue
    renderer = CardRenderer(directory, categories, settings.zone, translator.for_language("vi"))
    sealer = ChatSealer(secret_key)
    membership = TelegramMembership(bot, ttl_seconds=settings.membership_cache_seconds)
    outbox = OutboxWorker(
        OutboxStore(db), renderer, router, ReporterNotices(translator, sealer, directory)
    )
    rounds_store = RoundsStore(db)
    reminders = Reminders(
        rounds_store,
        DigestTexts(directory, categories, settings.zone, translator.for_language("vi")),
        policy=ReminderPolicy(
            ack_points=tuple(settings.reminder_ack_points),
            settle_days_before=tuple(settings.reminder_settle_days),
            every=timedelta(minutes=settings.round_minutes),
        ),
        ops_chat_id=settings.ops_chat_id,
    )
    rounds = RoundEngine(
        rounds_store, grace=timedelta(minutes=settings.round_misfire_grace_minutes),
        jobs=reminders.jobs(), queued=outbox.wake,
    )
    kpi = KpiService(KpiStore(db), directory)
    linking = GroupLinking(GroupStore(db), directory)
    if settings.morning_summary_at is not None:
        rounds.add(morning_summary_job(
            kpi, linking, rounds.groups, at=settings.morning_summary_at, zone=settings.zone,
            _=translator.for_language("vi"),
        ))
    campaigns = build_campaigns(settings, db, bot, translator, sealer, directory, outbox, clock)
    rounds.add(heads_up_job(  # the day before a built-in campaign, as a round
        campaigns.builtins, rounds.groups, at=campaigns.send_time, zone=settings.zone,
        police_texts=translator.for_language("vi"),
    ))
    return Services(
        settings=settings,
        db=db,
        directory=directory,
        translator=translator,
        pseudonyms=Pseudonymizer(secret_key),
        linking=linking,
        residents=ResidentPreferences(ResidentStore(db)),
        categories=categories,
        locator=locator,
        intake=IntakeService(IntakeStore(db), directory, categories, sealer, router,
                             deadlines=deadlines),
        tips=TipQueries(TipsStore(db)),
        outbox=outbox,
        renderer=renderer,
        boundaries_version=version,
        triage=TriageService(
            TriageStore(db), directory,
            membership,
            admin_ids=frozenset(settings.admin_ids),
            retention=timedelta(days=settings.retention_days),
            deadlines=deadlines, clock=clock,
        ),
        membership=membership,
        pictures=PictureJobs(),
        rounds=rounds,
        reminders=reminders,
        kpi=kpi,
        subscriptions=Subscriptions(SubscriberStore(db), sealer, directory, clock),
        campaigns=campaigns,
        clock=clock,
    )


def build_campaigns(
    settings: Settings, db: Database, bot: Bot, translator: Translator, sealer: ChatSealer,
    directory: CommuneDirectory, outbox: OutboxWorker, clock: Clock,
) -> CampaignScheduler:
    """The campaign scheduler and its broadcast engine (Telegram transports over ``bot``)."""
    store = CampaignsStore(db)
    police = translator.for_language("vi")
    groups = TelegramTransport(bot)

    def province_of(code: int) -> int | None:
        commune = directory.commune(code)
        return commune.province_code if commune is not None else None

    engine = BroadcastEngine(
        store, TelegramBroadcastTransport(bot), sealer,
        lambda language: stop_button(translator.for_language(language or "vi")),
        settings=BroadcastSettings(rate=settings.broadcast_rate,
                                   yield_rate=settings.broadcast_yield_rate),
        capacity=outbox, progress=ChatProgress(groups, settings.ops_chat_id, store, police),
        clock=clock, province_of=province_of,
        budget=budget_of(bot),  # the announcements take what the bot's other sends leave
    )
    return CampaignScheduler(
        store, engine, clock, settings.zone, police,
        send_time=parse_send_time(settings.campaign_send_time),
        grace=timedelta(minutes=settings.campaign_misfire_grace_minutes),
    )


def _proxy_url(settings: Settings) -> str | None:
    """The proxy is for reaching Telegram; the offline sandbox runs on this machine."""
    if settings.sandbox or settings.proxy_url is None:
        return None
    return settings.proxy_url.get_secret_value()


def build_requests(settings: Settings) -> tuple[AiohttpRequest, AiohttpRequest]:
    """PTB's HTTP clients: (Bot API calls, long polling)."""
    proxy = _proxy_url(settings)
    return (
        AiohttpRequest(connection_pool_size=256, proxy_url=proxy),
        # long polling holds its connection for the poll's timeout (10 s) plus the default
        AiohttpRequest(connection_pool_size=2, read_timeout=5.0, proxy_url=proxy),
    )


def build_application(
    settings: Settings, endpoint: BotEndpoint,
    requests: tuple[AiohttpRequest, AiohttpRequest] | None = None,
) -> TiplineApplication:
    """The PTB application talking to ``endpoint`` (handlers come with the services)."""
    context_types = ContextTypes(context=TiplineContext, bot_data=BotData)
    calls, polling = requests or build_requests(settings)
    application = cast(TiplineApplication, (
        ApplicationBuilder()
        .token(endpoint.token)
        .base_url(endpoint.base_url)
        .base_file_url(endpoint.base_file_url)
        .context_types(context_types)
        .defaults(Defaults(tzinfo=settings.zone))
        # 30/s overall (one budget, the broadcasts' included), 20/min per group, a burst
        # then ~1/s per private chat (Bot FAQ)
        .rate_limiter(TiplineRateLimiter(
            private_burst=settings.telegram_private_burst,
            private_window_seconds=settings.telegram_private_window_seconds,
        ))
        .concurrent_updates(True)
        .request(calls)
        .get_updates_request(polling)
        .build()
    ))
    return application


def attach_services(application: TiplineApplication, services: Services) -> None:
    application.bot_data.services = services
    handlers.register(application)
    schedule_housekeeping(application)
    schedule_rounds(application, services.settings.round_tick_seconds)
    schedule_campaigns(application)


SHUTDOWN_STEP_SECONDS = 15.0


async def _within(step: Awaitable[None], what: str) -> None:
    """Graceful shutdown with a deadline per step (SIGTERM must end the process)."""
    try:
        async with asyncio.timeout(SHUTDOWN_STEP_SECONDS):
            await step
    except TimeoutError:
        log.warning("shutdown step took too long, going on", extra={"event": what})


class TiplineRuntime:
    """Start-up and shutdown of the whole bot, in order, for every mode."""

    def __init__(
        self, settings: Settings, endpoint: BotEndpoint, secret_key: bytes,
        clock: Clock | None = None,
    ) -> None:
        self.settings = settings
        self.clock: Clock = clock or SystemClock()  # tests pass one they move forward
        self.endpoint = endpoint
        self._secret_key = secret_key
        self.services: Services | None = None
        self.application: TiplineApplication | None = None
        self.web: WebServer | None = None
        self._inbox: WebhookInbox | None = None
        self._requests: tuple[AiohttpRequest, AiohttpRequest] | None = None
        self._stopped = False

    async def start(self) -> None:
        """Start everything; on failure, close what was opened and raise. A wrong Bot API
        URL or token, or a web port in use, is a :class:`SettingsError` with one sentence."""
        self._stopped = False
        try:
            await self._start()
        except BaseException:
            await self.stop()
            raise

    async def _start(self) -> None:
        quiet_identity_bearing_loggers()
        self._requests = build_requests(self.settings)
        application = build_application(self.settings, self.endpoint, self._requests)
        self.application = application
        self.services = await build_services(
            self.settings, self._secret_key, application.bot, self.clock
        )
        attach_services(application, self.services)
        try:
            await application.initialize()
        except TelegramError:
            raise SettingsError(await self._explain_get_me_failure()) from None
        await handlers.set_command_menus(application, self.services.translator)
        await application.start()
        self.services.outbox.start(TelegramTransport(application.bot))
        webhook_mode = bool(self.settings.webhook_url)
        if webhook_mode:
            self._inbox = WebhookInbox(self.services.db, application, self._secret_key)
            await self._inbox.attach()
        self.web = WebServer(self.settings, inbox=self._inbox)
        try:
            await self.web.start()
        except OSError as error:
            if error.errno != errno.EADDRINUSE:
                raise
            raise SettingsError(
                f"Port {self.settings.web_port} on {self.settings.web_host} is already in use: "
                "set TIPLINE_WEB_PORT to a free port (0 picks any)."
            ) from None
        if webhook_mode:
            assert self.settings.webhook_url is not None and self.settings.webhook_secret
            await application.bot.set_webhook(
                url=self.settings.webhook_url,
                secret_token=self.settings.webhook_secret.get_secret_value(),
                allowed_updates=handlers.ALLOWED_UPDATES,
            )
        else:
            assert application.updater is not None
            await application.bot.delete_webhook()
            await application.updater.start_polling(
                poll_interval=0.0, timeout=10, allowed_updates=handlers.ALLOWED_UPDATES,
                drop_pending_updates=False,
            )
        log.info("bot started", extra={"mode": "webhook" if webhook_mode else "polling"})

    async def stop(self) -> None:
        """Reverse order of start: stop taking updates in, finish what is in flight, close.
        Once: a failed start() has called it already."""
        if self._stopped:
            return
        self._stopped = True
        if self.services is not None:
            await self.services.campaigns.stop()  # what is in flight is sent and marked
            await self.services.outbox.stop()
        if self.web is not None:  # no webhook update may enter the queue once it is closing
            await self.web.stop()
            self.web = None
        application = self.application
        if application is not None:
            if application.updater is not None and application.updater.running:
                await _within(application.updater.stop(), "stopping the updater")
            if application.running:
                # waits for the handlers in flight; a stuck one must not block the shutdown
                await _within(application.stop(), "finishing the handlers in flight")
            if not application.running:
                await application.shutdown()
        if self.services is not None:
            self.services.pictures.close()  # after the handlers that wait for it
            await self.services.db.close()
        if self._requests is not None:  # PTB leaves them open when its initialize() failed
            for request in self._requests:
                await request.shutdown()
            self._requests = None
        log.info("bot stopped")

    async def _explain_get_me_failure(self) -> str:
        """One sentence on why getMe failed, from a plain getMe of our own (PTB's error
        texts hold the token, or only "Invalid server response")."""
        url = self.endpoint.api_url
        probe = AiohttpRequest(connection_pool_size=1, proxy_url=_proxy_url(self.settings))
        await probe.initialize()
        try:
            status, body = await probe.do_request(
                f"{self.endpoint.base_url}{self.endpoint.token}/getMe", "POST"
            )
        except TelegramError as error:  # TimedOut, NetworkError
            via = " through TIPLINE_PROXY_URL" if _proxy_url(self.settings) else ""
            what = "no answer in time" if isinstance(error, TimedOut) else error.message
            return (
                f"Start-up failed: the Bot API at {url} could not be reached{via} ({what}): "
                "check TIPLINE_BOT_API_URL and the network."
            )
        finally:
            await probe.shutdown()
        try:
            reply = json.loads(body)
            description = str(reply["description"]) if not reply.get("ok") else "ok"
        except (ValueError, TypeError, KeyError, AttributeError):
            return (
                f"Start-up failed: the server at {url} answered getMe with HTTP {status} and "
                "no Bot API reply: check TIPLINE_BOT_API_URL."
            )
        if status == HTTPStatus.UNAUTHORIZED:
            return (
                f"Start-up failed: the Bot API at {url} refused the token (HTTP 401 "
                f"{description}): check TIPLINE_TELEGRAM_TOKEN."
            )
        return (
            f"Start-up failed: the Bot API at {url} answered getMe with HTTP {status} "
            f"({description}): check TIPLINE_BOT_API_URL and TIPLINE_TELEGRAM_TOKEN."
        )
