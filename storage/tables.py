"""The Core tables behind the SQLModel classes, for statements built once (typed here once,
instead of an ``X.__table__`` with its type-checker comment in every query module)."""

from __future__ import annotations

import sqlalchemy as sa

from storage.models import (
    Ban,
    Campaign,
    CampaignDelivery,
    CampaignRun,
    CommuneAreaRow,
    Draft,
    GroupLink,
    JobRun,
    OutboxMessage,
    Photo,
    RelayMessage,
    Resident,
    Subscriber,
    Tip,
    TipCard,
    TipEvent,
    TipReporter,
)


def _table(model: type) -> sa.Table:
    table = model.__table__  # type: ignore[attr-defined]
    assert isinstance(table, sa.Table)
    return table


areas = _table(CommuneAreaRow)
bans = _table(Ban)
cards = _table(TipCard)
drafts = _table(Draft)
events = _table(TipEvent)
job_runs = _table(JobRun)
links = _table(GroupLink)
outbox = _table(OutboxMessage)
photos = _table(Photo)
relay = _table(RelayMessage)
reporters = _table(TipReporter)
residents = _table(Resident)
tips = _table(Tip)
campaigns = _table(Campaign)
campaign_deliveries = _table(CampaignDelivery)
campaign_runs = _table(CampaignRun)
subscribers = _table(Subscriber)
