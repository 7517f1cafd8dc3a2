"""The KPI aggregates (``bot.domain.kpi``): counted by the database with GROUP BY, never by
loading tips into Python (the benchmark has 1,000,000 tips). Plain Core statements built
once per area scope; the indexes they use are migration 0007's (plans in
docs/benchmarks.md, "KPIs and /stats").

/stats is one statement (one round trip): the period's tips are read once (an index range
scan) into a CTE of 0/1 flags, one per definition, and the counts by category, by receipt
day and by commune are UNION ALL-ed with the durations at the ranks the percentiles need
(``row_number()`` over the sorted times to acknowledge: only those rows come back, then
interpolated as ``percentile_cont`` does) and the backlog now.

Three expressions differ by dialect and are compiled per dialect: seconds between two
timestamps, the local day number of a timestamp (days since 1970-01-01, cut at local
midnight by a fixed UTC offset) and the integer part of a number.
"""

from __future__ import annotations

import math
from datetime import date, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

from bot.domain.kpi import Area, Backlog, Counts, OverdueTip, Period, PeriodFigures
from storage.db import Database
from storage.models import OPEN_TIP_CONDITION, UTCDateTime
from storage.tables import tips as _tips

EPOCH = date(1970, 1, 1)
_t = _tips.c


class seconds_between(FunctionElement[float]):
    """``later - earlier`` in seconds (float)."""

    type = sa.Float()
    inherit_cache = True
    name = "seconds_between"


@compiles(seconds_between, "sqlite")
def _seconds_sqlite(element: seconds_between, compiler: SQLCompiler, **kw: Any) -> str:
    later, earlier = (compiler.process(arg, **kw) for arg in element.clauses)
    return f"((julianday({later}) - julianday({earlier})) * 86400.0)"


@compiles(seconds_between, "postgresql")
def _seconds_postgresql(element: seconds_between, compiler: SQLCompiler, **kw: Any) -> str:
    later, earlier = (compiler.process(arg, **kw) for arg in element.clauses)
    return f"EXTRACT(EPOCH FROM ({later} - {earlier}))"


class local_day(FunctionElement[int]):
    """Local day number (days since 1970-01-01) of a UTC timestamp, for a UTC offset in
    seconds: exact to the second (no floating point at midnight)."""

    type = sa.Integer()
    inherit_cache = True
    name = "local_day"


@compiles(local_day, "sqlite")
def _day_sqlite(element: local_day, compiler: SQLCompiler, **kw: Any) -> str:
    moment, offset = (compiler.process(arg, **kw) for arg in element.clauses)
    return f"((CAST(strftime('%s', {moment}) AS INTEGER) + {offset}) / 86400)"


@compiles(local_day, "postgresql")
def _day_postgresql(element: local_day, compiler: SQLCompiler, **kw: Any) -> str:
    moment, offset = (compiler.process(arg, **kw) for arg in element.clauses)
    return f"CAST(FLOOR((EXTRACT(EPOCH FROM {moment}) + {offset}) / 86400) AS INTEGER)"


# --- the definitions (docs/kpi.md), as SQL ----------------------------------------------------

_NOW = sa.bindparam("now", type_=UTCDateTime())
_START = sa.bindparam("start", type_=UTCDateTime())
_END = sa.bindparam("end", type_=UTCDateTime())
_OFFSET = sa.bindparam("offset", type_=sa.Integer())
_CODE = sa.bindparam("code", type_=sa.Integer())
_PROVINCE = sa.bindparam("province", type_=sa.Integer())

_IS_NEW = _t.status == "new"
_ACKNOWLEDGED = _t.status != "new"
_CLOSED = _t.status.in_(("processed", "invalid"))
_OPEN = _t.status.in_(("new", "acknowledged", "verifying"))
_IN_WORK = _t.status.in_(("acknowledged", "verifying"))
# when the tip was taken up: an invalid tip may be closed straight from "new"
_ACK_TIME = sa.func.coalesce(_t.acknowledged_at, _t.closed_at)
_OVERDUE_ACK = sa.and_(_IS_NEW, _t.ack_due_at < _NOW)
_OVERDUE_SETTLE = sa.and_(_IN_WORK, _t.settle_due_at < _NOW)
_LATE = sa.or_(
    sa.and_(_ACKNOWLEDGED, _t.ack_due_at < _ACK_TIME),
    _OVERDUE_ACK,
    sa.and_(_CLOSED, _t.closed_at > _t.settle_due_at),
    sa.and_(_OPEN, _t.settle_due_at < _NOW),
)


def _flag(condition: sa.ColumnElement[bool]) -> sa.ColumnElement[int]:
    return sa.case((condition, 1), else_=0)


def _count(condition: sa.ColumnElement[bool]) -> sa.ColumnElement[int]:
    return sa.func.coalesce(sa.func.sum(_flag(condition)), 0)


# each definition of docs/kpi.md as a 0/1 flag per tip, in the order of Counts' fields
# (after "received", which is count(*))
_FLAGS = {
    "acknowledged": _ACKNOWLEDGED,
    "acknowledged_on_time": sa.and_(_ACKNOWLEDGED, _t.ack_due_at >= _ACK_TIME),
    "processed": _CLOSED,
    "processed_on_time": sa.and_(_CLOSED, _t.closed_at <= _t.settle_due_at),
    "open": _OPEN,
    "overdue_ack": _OVERDUE_ACK,
    "overdue_settle": _OVERDUE_SETTLE,
    "late": _LATE,
}
_COUNT_NAMES = ["received", *_FLAGS]
PERCENTILES = (0.5, 0.9)  # of the time to acknowledge: the median and the 90th percentile

_AREA: dict[str, sa.ColumnElement[bool] | None] = {
    "commune": _t.commune_code == _CODE,
    "province": _t.province_code == _CODE,
    "all": None,
}
# the open tips' condition written as the partial index ix_tips_open_area writes it, so the
# planners (SQLite, PostgreSQL with generic plans) see that the index applies
_OPEN_LITERAL = sa.text(f"tips.{OPEN_TIP_CONDITION}")


def _where(scope: str, *conditions: sa.ColumnElement[bool] | sa.TextClause) -> list[Any]:
    area = _AREA[scope]
    return [*([area] if area is not None else []), *conditions]


def _open_in(scope: str) -> list[Any]:
    """The area's open tips, as ix_tips_open_area serves them (for a commune: its province,
    then the status, then the commune: an index-only count)."""
    province = [_t.province_code == _PROVINCE] if scope == "commune" else []
    return [*province, *_where(scope, _OPEN_LITERAL)]


def _in_period(scope: str) -> list[Any]:
    return _where(scope, _t.created_at >= _START, _t.created_at < _END)


_DAY = local_day(_t.created_at, _OFFSET)
_SECONDS = seconds_between(_ACK_TIME, _t.created_at)


class floor_int(FunctionElement[int]):
    """The integer part of a non-negative number."""

    type = sa.Integer()
    inherit_cache = True
    name = "floor_int"


@compiles(floor_int, "sqlite")
def _floor_sqlite(element: floor_int, compiler: SQLCompiler, **kw: Any) -> str:
    return f"CAST({compiler.process(element.clauses, **kw)} AS INTEGER)"  # truncates


@compiles(floor_int, "postgresql")
def _floor_postgresql(element: floor_int, compiler: SQLCompiler, **kw: Any) -> str:
    return f"CAST(FLOOR({compiler.process(element.clauses, **kw)}) AS INTEGER)"  # CAST rounds


def _report_statement(scope: str) -> Any:
    """One statement (one round trip, one index range scan of the period): the period's
    tips as flags in a CTE, then UNION ALL of the counts by category, by receipt day, by
    commune (province / all), the durations at the ranks the percentiles need, and the
    backlog now (open tips of the area, from the partial index)."""
    period = sa.select(
        _t.category, _t.commune_code, _DAY.label("day"),
        *(_flag(condition).label(name) for name, condition in _FLAGS.items()),
        sa.case((_ACKNOWLEDGED, _SECONDS), else_=None).label("seconds"),
    ).where(*_in_period(scope)).cte("period_tips")
    p = period.c
    sums = [sa.func.count(), *(sa.func.sum(p[name]) for name in _FLAGS)]
    no_seconds = sa.cast(sa.null(), sa.Float())

    def grouped(kind: str, key: Any) -> Any:
        return sa.select(sa.literal(kind).label("kind"), sa.cast(key, sa.String()).label("key"),
                         *(c.label(n) for c, n in zip(sums, _COUNT_NAMES, strict=True)),
                         no_seconds.label("seconds")).group_by(key)

    branches = [grouped("category", p.category), grouped("day", p.day)]
    if scope != "commune":
        branches.append(grouped("commune", p.commune_code))
    ranked = sa.select(
        p.seconds, (sa.func.row_number().over(order_by=p.seconds) - 1).label("rank"),
        sa.func.count().over().label("total"),
    ).where(p.seconds.is_not(None)).subquery("ranked")
    rank, last = ranked.c.rank, ranked.c.total - 1
    zero = sa.literal(0)
    branches.append(sa.select(
        sa.literal("rank"), sa.cast(rank, sa.String()),
        ranked.c.total, *([zero] * (len(_COUNT_NAMES) - 1)),  # "received": how many ranked
        ranked.c.seconds,
    ).where(sa.or_(*(rank.between(floor_int(last * fraction), floor_int(last * fraction) + 1)
                     for fraction in PERCENTILES))))
    backlog = {"open": sa.func.count(), "overdue_ack": _count(_OVERDUE_ACK),
               "overdue_settle": _count(_OVERDUE_SETTLE)}
    branches.append(sa.select(
        sa.literal("backlog"), sa.cast(sa.null(), sa.String()),
        *(backlog.get(name, zero) for name in _COUNT_NAMES), no_seconds,
    ).where(*_open_in(scope)))
    return sa.union_all(*branches)


def _statements(scope: str) -> dict[str, Any]:
    return {
        "report": _report_statement(scope),
        "backlog": sa.select(
            sa.func.count().label("open"),
            _count(_OVERDUE_ACK).label("overdue_ack"),
            _count(_OVERDUE_SETTLE).label("overdue_settle"),
        ).where(*_open_in(scope)),
        "overdue": sa.select(
            _t.code, _t.commune_code, _t.category, _t.status, _t.owner_name,
            sa.case((_IS_NEW, _t.ack_due_at), else_=_t.settle_due_at).label("due_at"),
        ).where(*_open_in(scope), sa.or_(_OVERDUE_ACK, _OVERDUE_SETTLE))
        .order_by(sa.text("due_at"), _t.id).limit(sa.bindparam("limit")),
    }


_BY_SCOPE = {scope: _statements(scope) for scope in _AREA}


def _counts(row: Any) -> Counts:
    return Counts(*(int(getattr(row, name)) for name in _COUNT_NAMES))


def interpolate(sorted_at: dict[int, float], total: int, fraction: float) -> float:
    """``percentile_cont`` from the values at 0-based ranks floor/ceil of fraction*(n-1)."""
    rank = fraction * (total - 1)
    low, high = math.floor(rank), math.ceil(rank)
    return sorted_at[low] + (rank - low) * (sorted_at[high] - sorted_at[low])


class KpiStore:
    """For ``bot.domain.kpi.KpiService``."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def _rows(self, name: str, area: Area, params: dict[str, Any]) -> list[Any]:
        statement = _BY_SCOPE[area.scope][name]
        async with self._db.engine.connect() as conn:
            return list(await conn.execute(
                statement, {"code": area.code, "province": area.province, **params}))

    async def figures(self, area: Area, period: Period, now: datetime) -> PeriodFigures:
        """Everything /stats shows, in one statement."""
        rows = await self._rows("report", area, {
            "start": period.start, "end": period.end, "now": now, "offset": period.utc_offset})
        by_category: dict[str, Counts] = {}
        by_day: dict[date, Counts] = {}
        by_commune: dict[int, Counts] = {}
        ranks: dict[int, float] = {}
        ranked = 0
        backlog = Backlog()
        for row in rows:
            if row.kind == "category":
                by_category[row.key] = _counts(row)
            elif row.kind == "day":
                by_day[EPOCH + timedelta(days=int(row.key))] = _counts(row)
            elif row.kind == "commune":
                by_commune[int(row.key)] = _counts(row)
            elif row.kind == "rank":
                ranks[int(row.key)] = float(row.seconds)
                ranked = int(row.received)
            else:
                backlog = Backlog(int(row.open), int(row.overdue_ack), int(row.overdue_settle))
        percentiles = [round(interpolate(ranks, ranked, fraction), 3)
                       for fraction in PERCENTILES] if ranked else []
        return PeriodFigures(by_category, by_day, by_commune, backlog, percentiles)

    async def backlog(self, area: Area, now: datetime) -> Backlog:
        rows = await self._rows("backlog", area, {"now": now})
        row = rows[0]
        return Backlog(int(row.open), int(row.overdue_ack), int(row.overdue_settle))

    async def overdue(
        self, area: Area, now: datetime, limit: int
    ) -> tuple[list[OverdueTip], int]:
        rows = await self._rows("overdue", area, {"now": now, "limit": limit})
        tips = [OverdueTip(row.code, int(row.commune_code), row.category, row.status,
                           row.owner_name, row.due_at) for row in rows]
        if len(tips) < limit:
            return tips, len(tips)
        return tips, (await self.backlog(area, now)).overdue
