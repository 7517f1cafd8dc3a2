"""The KPI module on the worked example of docs/kpi.md (SQLite and PostgreSQL), the periods
(ICT days), the texts (morning summary, /overdue) and the chart as an image."""

from __future__ import annotations

import io
from datetime import UTC, date, datetime, timedelta

import pytest
from PIL import Image

from bot.domain.communes import CommuneDirectory
from bot.domain.kpi import (
    Area,
    Backlog,
    Counts,
    DayCounts,
    KpiService,
    OverdueTip,
    format_duration,
    format_pct,
    morning_summary,
    overdue_text,
    parse_period,
    yesterday,
)
from bot.domain.kpi_chart import ChartLabels, render_chart
from bot.i18n import Translator
from storage.db import Database
from storage.kpi import KpiStore
from tests.kpi_example import ICT, KHAO_MANG, LAO_CAI, NOW, PHUC_KHANH, build_example

vi = Translator.load().for_language("vi")
HOUR = 3600.0

# docs/kpi.md, "Worked example": commune A (Xã Phúc Khánh), November 2026, now 01/12 09:00
A_NOVEMBER = Counts(received=8, acknowledged=6, acknowledged_on_time=4, processed=4,
                    processed_on_time=3, open=4, overdue_ack=1, overdue_settle=1, late=4)
B_NOVEMBER = Counts(received=1, acknowledged=1, acknowledged_on_time=1, processed=1,
                    processed_on_time=1, open=0, overdue_ack=0, overdue_settle=0, late=0)


@pytest.fixture(scope="module")
def directory() -> CommuneDirectory:
    return CommuneDirectory.load()


async def test_the_worked_example_of_docs_kpi_md(
    database: Database, directory: CommuneDirectory
) -> None:
    await build_example(database)
    kpi = KpiService(KpiStore(database), directory)
    november = parse_period("2026-11", NOW, ICT)
    assert november is not None

    commune = await kpi.report(Area("commune", PHUC_KHANH, "Xã Phúc Khánh"), november, NOW)
    assert commune.totals == A_NOVEMBER
    totals = commune.totals
    assert (totals.overdue, totals.on_time) == (2, 4)
    assert [format_pct(p) for p in (
        totals.acknowledged_pct, totals.acknowledged_on_time_pct, totals.processed_pct,
        totals.processed_on_time_pct, totals.on_time_pct)] == ["75%", "50%", "50%", "37,5%", "50%"]
    assert not commune.target_met
    assert commune.ack_median_seconds == 5 * HOUR
    assert commune.ack_p90_seconds == 32.5 * HOUR
    assert {key: c.received for key, c in commune.by_category.items()} == {
        "theft": 2, "drugs": 2, "other": 1, "fraud": 1, "gambling": 1, "disorder": 1}
    assert commune.by_category["drugs"].overdue_ack == 1  # the tip transferred in (KPI7)
    assert len(commune.daily) == 30
    assert {d.day.day: (d.counts.received, d.counts.processed, d.counts.on_time)
            for d in commune.daily if d.counts.received} == {
        3: (1, 1, 1), 5: (1, 1, 0), 8: (1, 0, 0), 10: (1, 1, 0), 12: (1, 1, 1),
        15: (1, 0, 1), 29: (1, 0, 0), 30: (1, 0, 1)}
    assert commune.by_commune == {}
    assert commune.backlog == Backlog(5, 1, 2)  # now, whatever the receipt date

    province = await kpi.report(Area("province", LAO_CAI, "Tỉnh Lào Cai"), november, NOW)
    assert province.by_commune == {PHUC_KHANH: A_NOVEMBER, KHAO_MANG: B_NOVEMBER}
    assert province.totals == A_NOVEMBER + B_NOVEMBER
    assert province.ack_median_seconds == 2 * HOUR
    assert province.ack_p90_seconds == pytest.approx(29.4 * HOUR)
    assert [code for code, _c in province.worst_communes()] == [PHUC_KHANH, KHAO_MANG]
    everywhere = await kpi.report(Area("all"), november, NOW)
    assert everywhere.totals == province.totals

    # now, whatever the receipt date: KPI0 (October) is overdue too
    assert await kpi.backlog(Area("commune", PHUC_KHANH), NOW) == Backlog(5, 1, 2)
    assert await kpi.backlog(Area("commune", KHAO_MANG), NOW) == Backlog(0, 0, 0)
    tips, total = await kpi.overdue(Area("commune", PHUC_KHANH), NOW)
    assert total == 3
    assert [(t.code, t.late_by(NOW)) for t in tips] == [
        ("KPI0-AAAA", timedelta(days=22)), ("KPI6-AAAA", timedelta(days=2, hours=17)),
        ("KPI7-AAAA", timedelta(hours=11))]
    assert (await kpi.overdue(Area("province", LAO_CAI), NOW, limit=2))[1] == 3

    # the morning summary of 01/12: yesterday = 30/11 (KPI8 received), the backlog now
    summary = await kpi.morning_text(Area("commune", PHUC_KHANH, "Xã Phúc Khánh"), NOW, ICT, vi)
    assert summary.splitlines() == [
        "☀️ Tổng hợp đầu ngày – Xã Phúc Khánh",
        "Hôm qua (30/11/2026): nhận 1 tin, đã tiếp nhận 0, đã xử lý xong 0.",
        "Hiện tại: 5 tin chưa xử lý xong, 3 tin quá hạn.",
        "❌ Chưa đạt chỉ tiêu: 1 tin chưa tiếp nhận đã quá hạn, 2 tin quá hạn giải quyết.",
        "Danh sách: /overdue",
    ]

    # the tip received on 30/11 18:00 is within its 24 hours until 01/12 18:00, then overdue
    at_six = datetime(2026, 12, 1, 18, 0, tzinfo=ICT)
    assert (await kpi.backlog(Area("commune", PHUC_KHANH), at_six)).overdue_ack == 1
    later = datetime(2026, 12, 1, 18, 1, tzinfo=ICT)
    assert (await kpi.backlog(Area("commune", PHUC_KHANH), later)).overdue_ack == 2


async def test_a_met_target_and_an_empty_area(
    database: Database, directory: CommuneDirectory
) -> None:
    await build_example(database)
    kpi = KpiService(KpiStore(database), directory)
    first_half = parse_period("2026-11", NOW, ICT)
    assert first_half is not None
    khao_mang = await kpi.report(Area("commune", KHAO_MANG, "Xã Khao Mang"), first_half, NOW)
    assert khao_mang.target_met and khao_mang.totals == B_NOVEMBER
    october = parse_period("2026-10", NOW, ICT)
    assert october is not None
    nothing = await kpi.report(Area("commune", KHAO_MANG), october, NOW)
    assert nothing.totals == Counts() and nothing.target_met
    assert nothing.ack_median_seconds is None and len(nothing.daily) == 31


def test_periods_are_whole_ict_days() -> None:
    now = datetime(2026, 12, 1, 1, 30, tzinfo=UTC)  # 08:30 ICT on 01/12
    week = parse_period(None, now, ICT)
    assert week is not None and parse_period("week", now, ICT) == week
    assert (week.first_day, week.last_day) == (date(2026, 11, 25), date(2026, 12, 1))
    assert week.start == datetime(2026, 11, 24, 17, 0, tzinfo=UTC)  # 00:00 ICT
    assert week.end == datetime(2026, 12, 1, 17, 0, tzinfo=UTC)
    assert week.utc_offset == 7 * 3600
    month = parse_period("month", now, ICT)
    assert month is not None and (month.first_day, month.last_day) == (
        date(2026, 12, 1), date(2026, 12, 1))
    assert parse_period("tháng", now, ICT) == month
    february = parse_period("2026-2", now, ICT)
    assert february is not None and february.last_day == date(2026, 2, 28)
    assert february.label() == "01/02–28/02/2026"
    for bad in ("2027-01", "2026-13", "2026-00", "monthly", "12/2026", "1999-01"):
        assert parse_period(bad, now, ICT) is None, bad
    # 16:59 UTC is still "yesterday" in ICT... 17:00 UTC is the next day
    assert yesterday(datetime(2026, 12, 1, 16, 59, tzinfo=UTC), ICT).first_day == date(
        2026, 11, 30)
    assert yesterday(datetime(2026, 12, 1, 17, 0, tzinfo=UTC), ICT).first_day == date(
        2026, 12, 1)


def test_the_morning_summary_text() -> None:
    day = date(2026, 11, 30)
    met = morning_summary(
        vi, area_name="Xã Phúc Khánh", day=day,
        yesterday=Counts(received=3, acknowledged=2, processed=1, open=2), backlog=Backlog(4))
    assert met == (
        "☀️ Tổng hợp đầu ngày – Xã Phúc Khánh\n"
        "Hôm qua (30/11/2026): nhận 3 tin, đã tiếp nhận 2, đã xử lý xong 1.\n"
        "Hiện tại: 4 tin chưa xử lý xong, 0 tin quá hạn.\n"
        "✅ Đạt chỉ tiêu 100%."
    )
    missed = morning_summary(
        vi, area_name="Tỉnh Lào Cai", day=day, yesterday=Counts(), backlog=Backlog(5, 1, 2))
    assert missed == (
        "☀️ Tổng hợp đầu ngày – Tỉnh Lào Cai\n"
        "Hôm qua (30/11/2026): nhận 0 tin, đã tiếp nhận 0, đã xử lý xong 0.\n"
        "Hiện tại: 5 tin chưa xử lý xong, 3 tin quá hạn.\n"
        "❌ Chưa đạt chỉ tiêu: 1 tin chưa tiếp nhận đã quá hạn, 2 tin quá hạn giải quyết.\n"
        "Danh sách: /overdue"
    )
    only_settle = morning_summary(
        vi, area_name="X", day=day, yesterday=Counts(), backlog=Backlog(1, 0, 1))
    assert "❌ Chưa đạt chỉ tiêu: 1 tin quá hạn giải quyết." in only_settle


def test_durations_and_overdue_lines() -> None:
    assert format_duration(59, vi) == "0 phút"
    assert format_duration(40 * 60, vi) == "40 phút"
    assert format_duration(5 * 3600, vi) == "5 giờ"
    assert format_duration(5 * 3600 + 600, vi) == "5 giờ 10 phút"
    assert format_duration(2 * 86400 + 3 * 3600 + 59, vi) == "2 ngày 3 giờ"
    assert format_duration(22 * 86400, vi) == "22 ngày"
    now = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)
    tips = [OverdueTip("7K3Q-9MXD", PHUC_KHANH, "theft", "new", None,
                       now - timedelta(hours=11)),
            OverdueTip("AB12-CD34", KHAO_MANG, "drugs", "verifying", "Bình <Lê>",
                       now - timedelta(days=2, hours=17))]
    text = overdue_text(tips, 3, now, vi, category_label={"theft": "Trộm cắp tài sản"},
                        commune_names={PHUC_KHANH: "Xã Phúc Khánh", KHAO_MANG: "Xã Khao Mang"})
    assert text.splitlines() == [
        "⚠️ Tin báo quá hạn (3):",
        "• /tip_7K3Q_9MXD · Xã Phúc Khánh · Trộm cắp tài sản · "
        "chưa có người phụ trách · chưa tiếp nhận, trễ 11 giờ",
        "• /tip_AB12_CD34 · Xã Khao Mang · drugs · Bình &lt;Lê&gt; · "
        "chưa giải quyết xong, trễ 2 ngày 17 giờ",
        "… và 1 tin báo khác.",
    ]
    assert overdue_text([], 0, now, vi, category_label={}) == "Không có tin báo quá hạn."


def test_the_chart_is_a_png_a_phone_can_read() -> None:
    labels = ChartLabels("Xã Phúc Khánh – 01/11–30/11/2026", "Tin báo nhận mỗi ngày",
                         "Tin đã nhận", "Đã xử lý xong", "Tỷ lệ đúng hạn", "Chỉ tiêu 100%",
                         "Không có tin báo nào trong kỳ này.")
    days = [DayCounts(date(2026, 11, 1) + timedelta(days=n),
                      Counts(received=n % 5, processed=n % 3, late=1 if n % 5 else 0))
            for n in range(30)]
    for daily in (days, days[:7], [DayCounts(date(2026, 11, 1), Counts())]):
        png = render_chart(daily, labels)
        image = Image.open(io.BytesIO(png))
        assert (image.format, image.size) == ("PNG", (1280, 960))
        assert 5_000 < len(png) < 1_000_000
        colours = {colour for _count, colour in image.getcolors(1_000_000) or []}
        assert (66, 133, 244) in colours or daily is not days  # the received bars
