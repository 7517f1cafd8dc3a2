"""The KPI aggregates (``bot.domain.kpi``): counted by the database with GROUP BY, never by
loading tips into Python (the benchmark has 1,000,000 tips). Plain Core statements built
once per area scope; the indexes they use are migration 0007's (plans in
docs/benchmarks.md, "KPIs and /stats").

Two expressions differ by dialect and are compiled per dialect: seconds between two
timestamps, and the local day number of a timestamp (days since 1970-01-01, cut at local
midnight by a fixed UTC offset). Percentiles of the time to acknowledge: PostgreSQL's
``percentile_cont``; on SQLite the same interpolation over the rows at the needed ranks
(``row_number()`` over the sorted durations: only those rows come back).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

from bot.domain.kpi import Area, Backlog, Counts, OverdueTip, Period
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


def _count(condition: sa.ColumnElement[bool]) -> sa.ColumnElement[int]:
    return sa.func.coalesce(sa.func.sum(sa.case((condition, 1), else_=0)), 0)


_COUNTS = (  # in the order of bot.domain.kpi.Counts' fields
    sa.func.count().label("received"),
    _count(_ACKNOWLEDGED).label("acknowledged"),
    _count(sa.and_(_ACKNOWLEDGED, _t.ack_due_at >= _ACK_TIME)).label("acknowledged_on_time"),
    _count(_CLOSED).label("processed"),
    _count(sa.and_(_CLOSED, _t.closed_at <= _t.settle_due_at)).label("processed_on_time"),
    _count(_OPEN).label("open"),
    _count(_OVERDUE_ACK).label("overdue_ack"),
    _count(_OVERDUE_SETTLE).label("overdue_settle"),
    _count(_LATE).label("late"),
)
_COUNT_NAMES = [column.name for column in _COUNTS]

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


def _in_period(scope: str) -> list[Any]:
    return _where(scope, _t.created_at >= _START, _t.created_at < _END)


_DAY = local_day(_t.created_at, _OFFSET).label("day")
_SECONDS = seconds_between(_ACK_TIME, _t.created_at)


def _statements(scope: str) -> dict[str, Any]:
    period = _in_period(scope)
    return {
        "category": sa.select(_t.category, *_COUNTS).where(*period).group_by(_t.category),
        "day": sa.select(_DAY, *_COUNTS).where(*period).group_by(_DAY),
        "commune": sa.select(_t.commune_code, *_COUNTS).where(*period)
        .group_by(_t.commune_code),
        # SQLite: the durations at the ranks asked for (1-based), and how many there are
        "ranks": sa.select(sa.text("seconds"), sa.text("rank"), sa.text("total")).select_from(
            sa.select(
                _SECONDS.label("seconds"),
                sa.func.row_number().over(order_by=_SECONDS).label("rank"),
                sa.func.count().over().label("total"),
            ).where(*period, _ACKNOWLEDGED).subquery("ranked")
        ).where(sa.text("rank IN :ranks").bindparams(sa.bindparam("ranks", expanding=True)))
        .order_by(sa.text("rank")),
        # PostgreSQL: percentile_cont over an array of fractions
        "percentiles": sa.select(
            sa.func.percentile_cont(
                sa.bindparam("fractions", type_=postgresql.ARRAY(sa.Float()))
            ).within_group(_SECONDS).label("values")
        ).where(*period, _ACKNOWLEDGED),
        "backlog": sa.select(
            sa.func.count().label("open"),
            _count(_OVERDUE_ACK).label("overdue_ack"),
            _count(_OVERDUE_SETTLE).label("overdue_settle"),
        ).where(*_where(scope, _OPEN_LITERAL)),
        "overdue": sa.select(
            _t.code, _t.commune_code, _t.category, _t.status, _t.owner_name,
            sa.case((_IS_NEW, _t.ack_due_at), else_=_t.settle_due_at).label("due_at"),
        ).where(*_where(scope, _OPEN_LITERAL), sa.or_(_OVERDUE_ACK, _OVERDUE_SETTLE))
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


def _ranks(total: int, fractions: Sequence[float]) -> set[int]:
    ranks: set[int] = set()
    for fraction in fractions:
        rank = fraction * (total - 1)
        ranks |= {math.floor(rank), math.ceil(rank)}
    return ranks


class KpiStore:
    """For ``bot.domain.kpi.KpiService``."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._postgres = db.engine.dialect.name == "postgresql"

    async def _rows(self, name: str, area: Area, params: dict[str, Any]) -> list[Any]:
        statement = _BY_SCOPE[area.scope][name]
        async with self._db.engine.connect() as conn:
            return list(await conn.execute(statement, {"code": area.code, **params}))

    @staticmethod
    def _period(period: Period, now: datetime) -> dict[str, Any]:
        return {"start": period.start, "end": period.end, "now": now}

    async def by_category(self, area: Area, period: Period, now: datetime) -> dict[str, Counts]:
        rows = await self._rows("category", area, self._period(period, now))
        return {row.category: _counts(row) for row in rows}

    async def by_day(self, area: Area, period: Period, now: datetime) -> dict[date, Counts]:
        rows = await self._rows(
            "day", area, self._period(period, now) | {"offset": period.utc_offset})
        return {EPOCH + timedelta(days=int(row.day)): _counts(row) for row in rows}

    async def by_commune(self, area: Area, period: Period, now: datetime) -> dict[int, Counts]:
        rows = await self._rows("commune", area, self._period(period, now))
        return {int(row.commune_code): _counts(row) for row in rows}

    async def ack_percentiles(
        self, area: Area, period: Period, count: int, fractions: Sequence[float]
    ) -> list[float]:
        """Time to acknowledge (seconds) at each fraction, as ``percentile_cont``; ``count``
        is the number of acknowledged tips (from the counts just read: if it changed in
        between, the ranks are asked again)."""
        params = {"start": period.start, "end": period.end}
        if self._postgres:
            rows = await self._rows("percentiles", area, params | {"fractions": list(fractions)})
            values = rows[0].values if rows else None
            return [round(float(v), 3) for v in values] if values else []
        for _attempt in range(3):
            if count <= 0:
                return []
            wanted = _ranks(count, fractions)
            rows = await self._rows(
                "ranks", area, params | {"ranks": sorted(r + 1 for r in wanted)})
            found = {int(row.rank) - 1: float(row.seconds) for row in rows}
            total = int(rows[0].total) if rows else 0
            if total == count and wanted <= found.keys():
                return [round(interpolate(found, count, fraction), 3) for fraction in fractions]
            count = total
        return []

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
