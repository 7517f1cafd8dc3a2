"""The KPIs behind "100% tin báo được tiếp nhận, xử lý" (Thanh Hóa KH 121): for a period of
receipt dates and an area (a commune, a province, everywhere), how many tips were received,
acknowledged and processed, on time or not, how many are open and overdue now, and whether
the area "đạt chỉ tiêu". Definitions with a worked example: docs/kpi.md.

Plain data and rules here; the aggregates are counted in the database by
``storage.kpi.KpiStore`` (GROUP BY there: tips are never loaded into Python). Texts for the
police group (/stats, /overdue, the morning summary) are built here too, through gettext.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from html import escape
from typing import Literal, Protocol
from zoneinfo import ZoneInfo

from bot.domain.communes import CommuneDirectory
from bot.domain.linking import GroupLinking, LinkingError, LinkTarget
from bot.domain.linking import Scope as LinkScope
from bot.domain.receipts import tip_link
from bot.domain.rounds import DailySchedule, Group, RoundJob, RoundWindow, per_group
from bot.i18n import N_, Gettext

Scope = Literal["commune", "province", "all"]
WEEK_DAYS = 7
OVERDUE_LISTED = 40  # /overdue lists at most this many (a Telegram message is 4,096 chars)
PROVINCE_ROWS = 60  # /stats in a province group: at most this many communes, worst first


# --- the area and the period ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Area:
    """Whose tips: a commune's (the commune that holds the tip now: a transferred tip counts
    for the commune it was transferred to), a province's, or all."""

    scope: Scope
    code: int | None = None  # commune or province code; None for "all"
    name: str = ""
    province: int | None = None  # a commune's province (its open tips are indexed by it)

    @classmethod
    def of_link(cls, target: LinkTarget) -> Area:
        if target.commune is not None:
            return cls("commune", target.commune.code, target.commune.name,
                       target.province.code)
        return cls("province", target.province.code, target.province.name)


@dataclass(frozen=True, slots=True)
class Period:
    """Receipt times ``start`` <= created_at < ``end`` (UTC), whole local days from
    ``first_day`` to ``last_day``. ``utc_offset`` (seconds) cuts the days at local midnight
    (ICT has no daylight saving time)."""

    first_day: date
    last_day: date
    start: datetime
    end: datetime
    utc_offset: int

    @property
    def days(self) -> list[date]:
        count = (self.last_day - self.first_day).days + 1
        return [self.first_day + timedelta(days=n) for n in range(count)]

    def label(self) -> str:
        if self.first_day == self.last_day:
            return self.first_day.strftime("%d/%m/%Y")
        return f"{self.first_day:%d/%m}–{self.last_day:%d/%m/%Y}"


def local_today(now: datetime, zone: ZoneInfo) -> date:
    return now.astimezone(zone).date()


def days_period(first_day: date, last_day: date, zone: ZoneInfo) -> Period:
    """Whole local days ``first_day``..``last_day`` (inclusive)."""
    start = datetime.combine(first_day, time(), zone)
    end = datetime.combine(last_day + timedelta(days=1), time(), zone)
    offset = start.utcoffset()
    assert offset is not None
    return Period(first_day, last_day, start.astimezone(UTC), end.astimezone(UTC),
                  int(offset.total_seconds()))


def yesterday(now: datetime, zone: ZoneInfo) -> Period:
    day = local_today(now, zone) - timedelta(days=1)
    return days_period(day, day, zone)


_MONTH = re.compile(r"^(\d{4})-(\d{1,2})$")
_WEEK_WORDS = frozenset({"week", "tuan", "tuần"})
_MONTH_WORDS = frozenset({"month", "thang", "tháng"})


def parse_period(argument: str | None, now: datetime, zone: ZoneInfo) -> Period | None:
    """``/stats`` argument: nothing or ``week`` = the last 7 days (today included);
    ``month`` = this calendar month so far; ``YYYY-MM`` = that month (not a future one).
    None for anything else."""
    today = local_today(now, zone)
    word = (argument or "week").strip().lower()
    if word in _WEEK_WORDS:
        return days_period(today - timedelta(days=WEEK_DAYS - 1), today, zone)
    if word in _MONTH_WORDS:
        return days_period(today.replace(day=1), today, zone)
    match = _MONTH.match(word)
    if match is None:
        return None
    year, month = int(match[1]), int(match[2])
    if not (2000 <= year <= 2100 and 1 <= month <= 12):
        return None
    first = date(year, month, 1)
    if first > today:
        return None
    following = date(year + month // 12, month % 12 + 1, 1)
    return days_period(first, min(following - timedelta(days=1), today), zone)


# --- the figures ---------------------------------------------------------------------------


def percent(part: int, whole: int) -> float | None:
    """``part`` of ``whole`` in %, None when there is nothing to measure."""
    return None if whole == 0 else 100.0 * part / whole


@dataclass(frozen=True, slots=True)
class Counts:
    """Tips received in a period (and area), counted by what became of them. "Now" is the
    moment the figures were counted (overdue, and a tip still open "on time so far")."""

    received: int = 0
    acknowledged: int = 0  # no longer "new": taken up, verifying, processed or invalid
    acknowledged_on_time: int = 0  # ... by its acknowledgement deadline
    processed: int = 0  # processed or invalid (closed)
    processed_on_time: int = 0  # ... by its settlement deadline
    open: int = 0  # new, taken up or verifying
    overdue_ack: int = 0  # open: still new, past its acknowledgement deadline
    overdue_settle: int = 0  # open: taken up or verifying, past its settlement deadline
    late: int = 0  # acknowledged or processed late, or open past a deadline

    @property
    def overdue(self) -> int:
        return self.overdue_ack + self.overdue_settle

    @property
    def on_time(self) -> int:
        """Acknowledged and processed on time, or still within their deadlines."""
        return self.received - self.late

    @property
    def acknowledged_pct(self) -> float | None:
        return percent(self.acknowledged, self.received)

    @property
    def acknowledged_on_time_pct(self) -> float | None:
        return percent(self.acknowledged_on_time, self.received)

    @property
    def processed_pct(self) -> float | None:
        return percent(self.processed, self.received)

    @property
    def processed_on_time_pct(self) -> float | None:
        return percent(self.processed_on_time, self.received)

    @property
    def on_time_pct(self) -> float | None:
        return percent(self.on_time, self.received)

    @property
    def target_met(self) -> bool:
        """"Đạt chỉ tiêu": 100% acknowledged and 0 overdue. A tip still inside its
        acknowledgement window is not due yet and does not count against the 100%; one
        past it is overdue (``overdue_ack``), so the rule reads: nothing overdue now."""
        return self.overdue_ack == 0 and self.overdue_settle == 0

    def __add__(self, other: Counts) -> Counts:
        return Counts(*(a + b for a, b in zip(_fields(self), _fields(other), strict=True)))


def _fields(counts: Counts) -> tuple[int, ...]:
    return (counts.received, counts.acknowledged, counts.acknowledged_on_time,
            counts.processed, counts.processed_on_time, counts.open, counts.overdue_ack,
            counts.overdue_settle, counts.late)


@dataclass(frozen=True, slots=True)
class DayCounts:
    day: date  # local (ICT) receipt day
    counts: Counts


@dataclass(frozen=True, slots=True)
class Backlog:
    """Open tips of an area now, whatever their receipt date."""

    open: int = 0
    overdue_ack: int = 0
    overdue_settle: int = 0

    @property
    def overdue(self) -> int:
        return self.overdue_ack + self.overdue_settle


@dataclass(frozen=True, slots=True)
class OverdueTip:
    code: str
    commune_code: int
    category: str
    status: str
    owner_name: str | None
    due_at: datetime  # the deadline it missed: acknowledgement if new, else settlement

    def late_by(self, now: datetime) -> timedelta:
        return now - self.due_at


@dataclass(frozen=True)
class PeriodFigures:
    """What storage counts for a period and an area, in one go."""

    by_category: dict[str, Counts]
    by_day: dict[date, Counts]
    by_commune: dict[int, Counts]  # province / all only
    backlog: Backlog  # now, whatever the receipt date
    ack_percentiles: list[float]  # seconds: median, 90th percentile (empty: none acknowledged)


@dataclass(frozen=True)
class KpiReport:
    area: Area
    period: Period
    now: datetime
    totals: Counts
    by_category: dict[str, Counts]
    daily: list[DayCounts]  # every day of the period, zeros included
    backlog: Backlog = field(default_factory=Backlog)
    by_commune: dict[int, Counts] = field(default_factory=dict)  # province / all only
    ack_median_seconds: float | None = None  # time to acknowledge (receipt -> taken up)
    ack_p90_seconds: float | None = None

    @property
    def target_met(self) -> bool:
        return self.totals.target_met

    def worst_communes(self) -> list[tuple[int, Counts]]:
        """Communes worst first: most overdue, then lowest on-time share, then busiest."""
        return sorted(self.by_commune.items(), key=lambda item: (
            -item[1].overdue, item[1].on_time_pct if item[1].received else 100.0,
            -item[1].received, item[0]))


# --- what the service needs from storage (storage/kpi.py) ----------------------------------


class KpiStorage(Protocol):
    async def figures(self, area: Area, period: Period, now: datetime) -> PeriodFigures: ...
    async def backlog(self, area: Area, now: datetime) -> Backlog: ...
    async def overdue(
        self, area: Area, now: datetime, limit: int
    ) -> tuple[list[OverdueTip], int]: ...


class KpiService:
    def __init__(self, store: KpiStorage, directory: CommuneDirectory) -> None:
        self._store = store
        self._directory = directory

    def _complete(self, area: Area) -> Area:
        """A commune's area with its province filled in."""
        if area.scope != "commune" or area.province is not None or area.code is None:
            return area
        commune = self._directory.commune(area.code)
        return replace(area, province=commune.province_code if commune else 0)

    async def report(self, area: Area, period: Period, now: datetime) -> KpiReport:
        """The period's figures for the area, and its backlog now (one statement)."""
        area = self._complete(area)
        figures = await self._store.figures(area, period, now)
        totals = sum(figures.by_category.values(), Counts())
        daily = [DayCounts(day, figures.by_day.get(day, Counts())) for day in period.days]
        median, p90 = figures.ack_percentiles or (None, None)
        return KpiReport(area, period, now, totals, figures.by_category, daily,
                         figures.backlog, figures.by_commune, median, p90)

    async def backlog(self, area: Area, now: datetime) -> Backlog:
        return await self._store.backlog(self._complete(area), now)

    async def morning_text(self, area: Area, now: datetime, zone: ZoneInfo, _: Gettext) -> str:
        """The morning summary of one group (``morning_summary``) from yesterday's figures
        (local days) and the backlog now: one statement."""
        period = yesterday(now, zone)
        report = await self.report(area, period, now)
        return morning_summary(_, area_name=area.name, day=period.first_day,
                               yesterday=report.totals, backlog=report.backlog)

    async def overdue(
        self, area: Area, now: datetime, limit: int = OVERDUE_LISTED
    ) -> tuple[list[OverdueTip], int]:
        """The area's overdue tips now, the deadline missed longest ago first, and how many
        there are in all."""
        return await self._store.overdue(self._complete(area), now, limit)

    def commune_name(self, code: int) -> str:
        commune = self._directory.commune(code)
        return commune.name if commune is not None else str(code)

    def commune_names(self, codes: Iterable[int]) -> dict[int, str]:
        return {code: self.commune_name(code) for code in codes}


# --- texts -----------------------------------------------------------------------------------


def format_pct(value: float | None) -> str:
    if value is None:
        return "–"
    rounded = round(value, 1)
    return f"{rounded:.0f}%" if rounded == int(rounded) else f"{rounded:.1f}%".replace(".", ",")


def format_duration(seconds: float, _: Gettext) -> str:
    """``2 ngày 3 giờ``, ``5 giờ 10 phút``, ``40 phút`` (rounded down to the minute)."""
    minutes = int(max(seconds, 0) // 60)
    days, rest = divmod(minutes, 24 * 60)
    hours, minutes = divmod(rest, 60)
    if days:
        return _("{days} d {hours} h").format(days=days, hours=hours) if hours else \
            _("{days} d").format(days=days)
    if hours:
        return _("{hours} h {minutes} min").format(hours=hours, minutes=minutes) if minutes \
            else _("{hours} h").format(hours=hours)
    return _("{minutes} min").format(minutes=minutes)


def missing_text(overdue_ack: int, overdue_settle: int, _: Gettext) -> str:
    """What keeps the area from "đạt chỉ tiêu", or that it is met."""
    if overdue_ack == 0 and overdue_settle == 0:
        return _("✅ Target met: 100% acknowledged, nothing overdue.")
    parts = []
    if overdue_ack:
        parts.append(_("{count} not acknowledged in time").format(count=overdue_ack))
    if overdue_settle:
        parts.append(_("{count} past the settlement deadline").format(count=overdue_settle))
    return _("❌ Target not met: {missing}.").format(missing=", ".join(parts))


def counts_lines(counts: Counts, _: Gettext) -> list[str]:
    return [
        _("Received: {count}").format(count=counts.received),
        _("Acknowledged: {count} ({pct}), on time {on_time} ({on_time_pct})").format(
            count=counts.acknowledged, pct=format_pct(counts.acknowledged_pct),
            on_time=counts.acknowledged_on_time,
            on_time_pct=format_pct(counts.acknowledged_on_time_pct)),
        _("Processed: {count} ({pct}), on time {on_time} ({on_time_pct})").format(
            count=counts.processed, pct=format_pct(counts.processed_pct),
            on_time=counts.processed_on_time,
            on_time_pct=format_pct(counts.processed_on_time_pct)),
        _("Open: {open} · overdue: {overdue}").format(open=counts.open, overdue=counts.overdue),
    ]


def stats_text(report: KpiReport, _: Gettext, category_label: dict[str, str]) -> str:
    """The caption of /stats: the period's figures, the target, the backlog now (plain
    text, under 1,024 characters)."""
    totals = report.totals
    lines = [
        _("📊 {area} – tips received {period}").format(
            area=report.area.name, period=report.period.label()),
        *counts_lines(totals, _),
    ]
    if report.ack_median_seconds is not None and report.ack_p90_seconds is not None:
        lines.append(_("Time to acknowledge: median {median}, 90% within {p90}").format(
            median=format_duration(report.ack_median_seconds, _),
            p90=format_duration(report.ack_p90_seconds, _)))
    if report.area.scope == "commune" and report.by_category:
        top = sorted(report.by_category.items(), key=lambda item: (-item[1].received, item[0]))
        lines.append(_("By category: {list}").format(list=", ".join(
            f"{category_label.get(key, key)} {counts.received}" for key, counts in top[:5])))
    lines.append(missing_text(totals.overdue_ack, totals.overdue_settle, _))
    lines.append(_("Now, all periods: {open} open, {overdue} overdue (/overdue).").format(
        open=report.backlog.open, overdue=report.backlog.overdue))
    text = "\n".join(lines)
    return text if len(text) <= 1024 else text[:1020] + "…"


def province_table(report: KpiReport, _: Gettext, names: dict[int, str]) -> str:
    """/stats in a province group: one row per commune that received tips in the period,
    worst first."""
    rows = report.worst_communes()
    lines = [_("Communes, worst first ({count}): received · acknowledged · processed · "
               "overdue · on time").format(count=len(rows))]
    if not rows:
        lines.append(_("No tips were received in this period."))
    for code, counts in rows[:PROVINCE_ROWS]:
        mark = "✅" if counts.target_met else "❌"
        lines.append(
            f"{mark} {names.get(code, str(code))}: {counts.received} · {counts.acknowledged} · "
            f"{counts.processed} · {counts.overdue} · {format_pct(counts.on_time_pct)}")
    if len(rows) > PROVINCE_ROWS:
        rest = rows[PROVINCE_ROWS:]
        lines.append(_("… and {count} more communes ({met} of them met the target).").format(
            count=len(rest), met=sum(1 for _code, c in rest if c.target_met)))
    text = "\n".join(lines)
    return text if len(text) <= 4000 else text[:3990] + "…"


def overdue_text(
    tips: list[OverdueTip], total: int, now: datetime, _: Gettext, *,
    category_label: dict[str, str], commune_names: dict[int, str] | None = None,
) -> str:
    """/overdue: one line per overdue tip (HTML: each code as its one-tap ``/tip_CODE``)."""
    if not tips:
        return escape(_("No overdue tips."))
    lines = [escape(_("⚠️ Overdue tips ({count}):").format(count=total))]
    for tip in tips:
        owner = tip.owner_name or _("no officer yet")
        what = _("not acknowledged") if tip.status == "new" else _("not settled")
        place = f" · {escape(commune_names[tip.commune_code])}" if commune_names else ""
        lines.append(
            f"• {escape(tip_link(tip.code))}{place} · "
            f"{escape(category_label.get(tip.category, tip.category))} · {escape(owner)} · "
            + escape(_("{what}, {late} late").format(
                what=what, late=format_duration(tip.late_by(now).total_seconds(), _))))
    if total > len(tips):
        lines.append(escape(_("… and {count} more.").format(count=total - len(tips))))
    return "\n".join(lines)


MORNING_TITLE = N_("☀️ Morning summary – {area}")


def morning_summary(
    _: Gettext, *, area_name: str, day: date, yesterday: Counts, backlog: Backlog
) -> str:
    """The 07:30 summary for one group: yesterday's received / acknowledged / processed (of
    the tips received yesterday), open and overdue now (all receipt dates), and "Đạt chỉ
    tiêu 100%" or what is missing (plain text)."""
    lines = [
        _(MORNING_TITLE).format(area=area_name),
        _("Yesterday ({day}): {received} received, {acknowledged} acknowledged, "
          "{processed} processed.").format(
            day=day.strftime("%d/%m/%Y"), received=yesterday.received,
            acknowledged=yesterday.acknowledged, processed=yesterday.processed),
        _("Now: {open} open, {overdue} overdue.").format(
            open=backlog.open, overdue=backlog.overdue),
    ]
    if backlog.overdue == 0:
        lines.append(_("✅ Target met 100%."))
    else:
        lines.append(missing_text(backlog.overdue_ack, backlog.overdue_settle, _))
        lines.append(_("The list: /overdue"))
    return "\n".join(lines)


__all__ = ["Area", "Backlog", "Counts", "DayCounts", "KpiReport", "KpiService", "KpiStorage",
           "OverdueTip", "Period", "PeriodFigures", "days_period", "format_duration", "format_pct",
           "morning_summary", "overdue_text", "parse_period", "percent", "province_table",
           "stats_text", "yesterday"]


# --- the morning summary as a round (bot/domain/rounds.py) -----------------------------------


def morning_summary_job(
    kpi: KpiService, linking: GroupLinking, groups: Callable[[], Awaitable[Sequence[Group]]],
    *, at: time, zone: ZoneInfo, _: Gettext,
) -> RoundJob:
    """Every linked police group's summary at ``at`` local time each day (one round a day,
    keyed by the local date: sent once, and once after a restart within the rounds' grace):
    yesterday's figures and the backlog now, for its commune or province."""

    async def text(group: Group, window: RoundWindow, now: datetime) -> str | None:
        scope: LinkScope = "commune" if group.scope == "commune" else "province"
        try:
            area = Area.of_link(linking.resolve(scope, group.code))
        except LinkingError:  # a code the directory no longer has
            return None
        return await kpi.morning_text(area, now, zone, _)

    return RoundJob("summary", DailySchedule(at, zone), per_group(groups, text))
