"""/stats and /overdue in a police group: the figures of the group's commune (or province,
one row per commune) for a period, with a chart; the overdue tips now. The figures are
``bot.domain.kpi``'s (definitions: docs/kpi.md); the chart is drawn off the event loop."""

from __future__ import annotations

import asyncio
import logging

from telegram import Update
from telegram.constants import ParseMode

from bot.context import TiplineContext
from bot.domain.kpi import (
    Area,
    overdue_text,
    parse_period,
    province_table,
    stats_text,
)
from bot.domain.kpi_chart import ChartLabels, render_chart
from bot.domain.linking import LinkTarget
from handlers.common import police_texts

log = logging.getLogger(__name__)


async def _linked_area(update: Update, context: TiplineContext) -> Area | None:
    """The group's commune or province; None (and the usual sentence) if not linked."""
    chat, message = update.effective_chat, update.effective_message
    assert chat is not None and message is not None
    target: LinkTarget | None = await context.services.linking.where(chat_id=chat.id)
    if target is None:
        _ = police_texts(context)
        await message.reply_text(
            _("This group is not linked yet. An administrator can link it with "
              "/link <commune code>.")
        )
        return None
    return Area.of_link(target)


def _category_labels(context: TiplineContext) -> dict[str, str]:
    return {c.key: c.label("vi") for c in context.services.categories.all()}


async def stats_command(update: Update, context: TiplineContext) -> None:
    """/stats [week|month|YYYY-MM]: the figures and the chart (and, in a province group,
    one row per commune, worst first)."""
    _ = police_texts(context)
    message = update.effective_message
    assert message is not None
    area = await _linked_area(update, context)
    if area is None:
        return
    services = context.services
    now = services.clock.now()
    args = context.args or []
    period = parse_period(args[0] if args else None, now, services.settings.zone) \
        if len(args) <= 1 else None
    if period is None:
        await message.reply_text(_(
            "Usage: /stats (the last 7 days), /stats month (this month) or /stats 2026-11 "
            "(a whole month)."))
        return
    report = await services.kpi.report(area, period, now)  # one statement, backlog included
    caption = stats_text(report, _, _category_labels(context))
    labels = ChartLabels(
        title=f"{area.name} – {period.label()}",
        subtitle=_("Tips received each day and how many are processed (by day of receipt)"),
        received=_("Received"), processed=_("Processed"),
        on_time=_("On time, by day of receipt"), target=_("Target 100%"),
        no_tips=_("No tips were received in this period."),
    )
    # CPU-bound (tens of ms): off the event loop, so the bot keeps answering meanwhile
    chart = await asyncio.to_thread(render_chart, report.daily, labels)
    await message.reply_photo(chart, caption=caption)
    if area.scope != "commune":
        names = services.kpi.commune_names(report.by_commune)
        await message.reply_text(province_table(report, _, names))


async def overdue_command(update: Update, context: TiplineContext) -> None:
    """/overdue: the group's overdue tips now (code as ``/tip CODE``, category, officer in
    charge, how late)."""
    _ = police_texts(context)
    message = update.effective_message
    assert message is not None
    area = await _linked_area(update, context)
    if area is None:
        return
    services = context.services
    now = services.clock.now()
    tips, total = await services.kpi.overdue(area, now)
    names = services.kpi.commune_names(t.commune_code for t in tips) \
        if area.scope != "commune" else None
    await message.reply_text(
        overdue_text(tips, total, now, _, category_label=_category_labels(context),
                     commune_names=names),
        parse_mode=ParseMode.HTML,
    )
