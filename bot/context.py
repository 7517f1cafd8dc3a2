"""The services every handler may use, and the typed PTB context that carries them."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from telegram.ext import Application, CallbackContext, ExtBot, JobQueue

from bot.conversation.core import Conversation
from bot.domain.broadcast.campaigns import CampaignScheduler
from bot.domain.broadcast.subscribers import Subscriptions
from bot.domain.cards import CardRenderer
from bot.domain.categories import Categories
from bot.domain.clock import Clock, SystemClock
from bot.domain.communes import CommuneDirectory
from bot.domain.geo import CommuneLocator
from bot.domain.identity import Pseudonymizer
from bot.domain.intake import IntakeService
from bot.domain.kpi import KpiService
from bot.domain.linking import GroupLinking
from bot.domain.outbox import OutboxWorker
from bot.domain.picture_jobs import PictureJobs
from bot.domain.reminders import Reminders
from bot.domain.residents import ResidentPreferences
from bot.domain.rounds import RoundEngine
from bot.domain.tips import TipQueries
from bot.domain.triage import TriageService
from bot.i18n import Gettext, Translator
from bot.membership import TelegramMembership
from bot.settings import Settings
from storage.db import Database

TELEGRAM = "tg"  # platform prefix in pseudonyms


@dataclass
class Services:
    """Built once by the composition root (bot/app.py); shared by all handlers."""

    settings: Settings
    db: Database
    directory: CommuneDirectory
    translator: Translator
    pseudonyms: Pseudonymizer
    linking: GroupLinking
    residents: ResidentPreferences
    categories: Categories
    locator: CommuneLocator
    intake: IntakeService
    tips: TipQueries
    outbox: OutboxWorker
    renderer: CardRenderer
    triage: TriageService
    membership: TelegramMembership
    pictures: PictureJobs  # the bounded pool pictures are sanitised on
    rounds: RoundEngine  # scheduled rounds (reminders, escalations, summary), one ledger
    reminders: Reminders  # the reminder and escalation jobs, the cards' overdue mark
    kpi: KpiService  # /stats, /overdue, the morning summary's figures
    subscriptions: Subscriptions  # announcements: who opted in (sealed chats)
    campaigns: CampaignScheduler  # yearly and custom campaigns, their broadcasts
    clock: Clock = field(default_factory=SystemClock)  # tests move it instead of sleeping
    boundaries_version: tuple[int, datetime | None] = (0, None)


class BotData:
    """PTB's ``bot_data``: holds the services instead of string keys."""

    def __init__(self) -> None:
        self.services: Services | None = None
        self.conversation: Conversation | None = None  # built on first use


class TiplineContext(CallbackContext[ExtBot[int], dict[Any, Any], dict[Any, Any], BotData]):
    """Typed context: ``context.services`` instead of ``bot_data["..."]`` lookups."""

    @property
    def services(self) -> Services:
        services = self.bot_data.services
        if services is None:
            raise RuntimeError("services are not attached to the application yet")
        return services

    @property
    def conversation(self) -> Conversation:
        """The resident conversation (channel-neutral) over these services."""
        conversation = self.bot_data.conversation
        if conversation is None or conversation.services is not self.services:
            conversation = self.bot_data.conversation = Conversation(self.services)
        return conversation

    def texts(self, language: str) -> Gettext:
        return self.services.translator.for_language(language)


TiplineApplication = Application[
    ExtBot[int], TiplineContext, dict[Any, Any], dict[Any, Any], BotData, JobQueue[TiplineContext]
]
