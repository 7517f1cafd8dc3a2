"""Tip intake end to end: real python-telegram-bot, our runtime, the sandbox over HTTP.

What residents see in their chat, what police see in their group (the card, the uploaded
photo bytes), and what the database holds."""

from __future__ import annotations

import asyncio
import io
import json
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from sqlmodel import col, select

from bot.context import TELEGRAM
from bot.domain.intake import Step
from bot.sandbox import SandboxUser
from bot.telegram_transport import TelegramTransport
from storage.areas import import_boundaries, load_locator
from storage.models import OutboxMessage, Tip, TipCard, TipEvent, TipReporter
from tests.conftest import World

PHOTOS = Path(__file__).parent / "fixtures" / "photos"
PHUC_KHANH = 2998  # Xã Phúc Khánh, Tỉnh Lào Cai (the demo commune group)


# --- driving the dialogue ------------------------------------------------------------------


async def press_and_wait(
    world: World, user: SandboxUser, message: dict[str, Any], data: str, replies: int = 1
) -> list[dict[str, Any]]:
    chat = message["chat"]["id"]
    before = len(world.sandbox.bot_messages(chat))
    await world.press(user, message, data)
    messages = await world.sandbox.wait_for_bot_messages(chat, before + replies)
    return messages[before:]


def buttons(message: dict[str, Any]) -> list[str]:
    markup = message.get("reply_markup") or {}
    return [b.get("callback_data") for row in markup.get("inline_keyboard", []) for b in row]


async def write_tip(
    world: World, user: SandboxUser, *, start: str = f"/start c{PHUC_KHANH}",
    category: str = "drugs", urgent: bool = False, text: str = "Có người bán ma túy ở chợ.",
) -> dict[str, Any]:
    """From the first message to the attachments step; returns the attachments prompt."""
    [prompt] = await world.exchange(user, start)
    assert f"d:k:{category}" in buttons(prompt), prompt["text"]
    [prompt] = await press_and_wait(world, user, prompt, f"d:k:{category}")
    [prompt] = await press_and_wait(world, user, prompt, "d:u:1" if urgent else "d:u:0")
    [prompt] = await world.exchange(user, text)
    assert "d:done" in buttons(prompt)
    return prompt


async def confirm(world: World, user: SandboxUser, prompt: dict[str, Any]) -> str:
    """Done -> review -> send; returns the receipt code the resident was given."""
    [review] = await press_and_wait(world, user, prompt, "d:done")
    assert buttons(review) == ["d:ok", "d:x"]
    [receipt] = await press_and_wait(world, user, review, "d:ok")
    code = next(e for e in receipt["entities"] if e["type"] == "code")
    return str(receipt["text"][code["offset"]:code["offset"] + code["length"]])


async def send_tip(world: World, user: SandboxUser, **kwargs: Any) -> str:
    return await confirm(world, user, await write_tip(world, user, **kwargs))


async def tip_by_code(world: World, code: str) -> Tip:
    async with world.services.db.session() as session:
        tip = (await session.exec(select(Tip).where(Tip.code == code))).one()
    return tip


async def events(world: World, tip_id: int) -> list[str]:
    async with world.services.db.session() as session:
        rows = (await session.exec(
            select(TipEvent).where(TipEvent.tip_id == tip_id).order_by(col(TipEvent.id))
        )).all()
    return [r.event for r in rows]


async def wait_card(world: World, chat_id: int, count: int = 1) -> list[dict[str, Any]]:
    return await world.sandbox.wait_for_bot_messages(chat_id, count, timeout=10)


# --- the resident's path -------------------------------------------------------------------


async def test_deep_link_to_card_in_vietnamese(world: World) -> None:
    resident = world.demo.residents[0]
    [prompt] = await world.exchange(resident, f"/start c{PHUC_KHANH}")
    assert prompt["text"].startswith("Gửi cho: xã Phúc Khánh, tỉnh Lào Cai")
    assert buttons(prompt)[:2] == ["d:k:drugs", "d:k:theft"]
    [prompt] = await press_and_wait(world, resident, prompt, "d:k:drugs")
    assert prompt["text"] == "Sự việc có đang xảy ra và cần hỗ trợ khẩn cấp không?"
    [prompt] = await press_and_wait(world, resident, prompt, "d:u:0")
    assert prompt["text"].startswith("Hãy mô tả sự việc: ở đâu, khi nào, ai, làm gì.")
    [prompt] = await world.exchange(resident, "Tối nay 20h có người bán ma túy ở chợ Phúc Khánh.")
    assert prompt["text"].startswith("Đã ghi nhận.")
    [review] = await press_and_wait(world, resident, prompt, "d:done")
    assert "Vui lòng kiểm tra lại tin báo:" in review["text"]
    assert "Loại: Ma túy" in review["text"]
    [receipt] = await press_and_wait(world, resident, review, "d:ok")
    assert receipt["text"].startswith("✅ Đã nhận tin báo của bạn. Mã tra cứu: ")
    code = receipt["text"].split("Mã tra cứu: ")[1][:9]

    [card] = await wait_card(world, world.demo.commune_group.id)
    tip = await tip_by_code(world, code)
    assert card["text"].splitlines()[:3] == [
        f"📥 Tin báo {code}", "📍 Xã Phúc Khánh, Tỉnh Lào Cai", "🏷 Loại: Ma túy",
    ]
    assert f"👤 Người báo tin #{tip.id}" in card["text"]
    assert "Tối nay 20h có người bán ma túy ở chợ Phúc Khánh." in card["text"]
    assert "📌 Trạng thái: Mới – chờ tiếp nhận" in card["text"]
    assert "forward_origin" not in card
    assert (tip.status, tip.queue_scope, tip.queue_chat_id) == (
        "new", "commune", world.demo.commune_group.id
    )
    assert tip.ack_due_at > tip.created_at and tip.settle_due_at > tip.ack_due_at
    await _until(lambda: _events_are(world, tip, ["received", "delivered"]))
    async with world.services.db.session() as session:
        outbox = (await session.exec(
            select(OutboxMessage).where(OutboxMessage.kind == "tip_card")
        )).one()
        card_row = (await session.exec(select(TipCard))).one()
    assert outbox.status == "sent" and outbox.attempts == 1
    assert (card_row.chat_id, card_row.message_id) == (
        world.demo.commune_group.id, card["message_id"]
    )


async def test_search_path_in_english(world: World) -> None:
    resident = world.demo.residents[1]
    [prompt] = await world.exchange(resident, "/new")
    assert prompt["text"].startswith("Which commune or ward police should receive this tip?")
    [choices] = await world.exchange(resident, "phuc khanh lao cai")
    assert choices["text"] == "Choose the commune or ward:"
    assert buttons(choices)[0] == f"d:c:{PHUC_KHANH}"
    [prompt] = await press_and_wait(world, resident, choices, f"d:c:{PHUC_KHANH}")
    assert prompt["text"].startswith("To: xã Phúc Khánh, tỉnh Lào Cai\nWhat is it about?")
    [prompt] = await press_and_wait(world, resident, prompt, "d:k:theft")
    [prompt] = await press_and_wait(world, resident, prompt, "d:u:1")
    assert prompt["text"].startswith("🔴 If anyone is in danger, CALL 113 NOW.")
    [prompt] = await world.exchange(resident, "Two men are breaking into house 12 right now.")
    code = await confirm(world, resident, prompt)
    [card] = await wait_card(world, world.demo.commune_group.id)
    assert card["text"].startswith("🔴 KHẨN CẤP\n📥 Tin báo " + code)
    assert "🏷 Loại: Trộm cắp tài sản" in card["text"]
    tip = await tip_by_code(world, code)
    assert tip.urgent and (tip.ack_due_at - tip.created_at).total_seconds() == 3600


async def test_remembered_commune_preselects_the_next_tip(world: World) -> None:
    resident = world.demo.residents[0]
    await send_tip(world, resident)
    [prompt] = await world.exchange(resident, "/new")
    assert prompt["text"].startswith("Gửi cho: xã Phúc Khánh, tỉnh Lào Cai")
    [prompt] = await press_and_wait(world, resident, prompt, "d:cc")
    assert prompt["text"].startswith("Tin báo gửi cho Công an xã/phường nào?")


async def _import_square_boundary(world: World) -> None:
    square = [[104.0, 22.0], [104.2, 22.0], [104.2, 22.2], [104.0, 22.2], [104.0, 22.0]]
    geojson = json.dumps({"type": "FeatureCollection", "features": [{
        "type": "Feature", "properties": {"ma_xa": "02998"},
        "geometry": {"type": "Polygon", "coordinates": [square]},
    }]})
    services = world.services
    assert await import_boundaries(services.db, services.directory, geojson.encode()) == 1
    services.locator = await load_locator(services.db)


async def _tip_from_shared_location(world: World, answer: str) -> tuple[str, list[Any]]:
    await _import_square_boundary(world)
    resident = world.demo.residents[1]
    await world.exchange(resident, "/new")
    before = len(world.sandbox.bot_messages(resident.id))
    await world.sandbox.send_location(resident.id, 22.1, 104.1)
    [question] = (await world.sandbox.wait_for_bot_messages(resident.id, before + 1))[before:]
    assert question["text"] == ("📍 This location is in xã Phúc Khánh, tỉnh Lào Cai. "
                                "Is it also where it happened?")
    assert buttons(question) == ["d:lh:22.100000:104.100000", "d:ln"]
    data = buttons(question)[0 if answer == "here" else 1]
    [prompt] = await press_and_wait(world, resident, question, data)
    assert prompt["text"].startswith("To: xã Phúc Khánh, tỉnh Lào Cai")
    [prompt] = await press_and_wait(world, resident, prompt, "d:k:gambling")
    [prompt] = await press_and_wait(world, resident, prompt, "d:u:0")
    [prompt] = await world.exchange(resident, "Gambling every night behind the market.")
    code = await confirm(world, resident, prompt)
    await world.sandbox.wait_idle()
    return code, world.sandbox.bot_messages(world.demo.commune_group.id)


async def test_a_location_shared_to_find_the_commune_is_kept_only_if_it_is_the_place(
    world: World,
) -> None:
    code, messages = await _tip_from_shared_location(world, "here")
    assert messages[1]["location"] == {"latitude": 22.1, "longitude": 104.1}
    assert messages[1]["reply_to_message"]["message_id"] == messages[0]["message_id"]
    tip = await tip_by_code(world, code)
    assert (tip.latitude, tip.longitude) == (22.1, 104.1)


async def test_a_location_shared_only_to_find_the_commune_is_not_kept(world: World) -> None:
    code, messages = await _tip_from_shared_location(world, "only-routing")
    assert [m for m in messages if "location" in m] == []
    tip = await tip_by_code(world, code)
    assert (tip.latitude, tip.longitude) == (None, None)


async def test_location_without_boundaries_asks_for_the_name(world: World) -> None:
    resident = world.demo.residents[1]
    await world.exchange(resident, "/new")
    before = len(world.sandbox.bot_messages(resident.id))
    await world.sandbox.send_location(resident.id, 22.1, 104.1)
    [reply] = (await world.sandbox.wait_for_bot_messages(resident.id, before + 1))[before:]
    assert reply["text"].startswith("I could not tell the commune from this location.")


async def test_province_fallback_when_the_commune_has_no_group(world: World) -> None:
    other = next(c for c in world.services.directory.communes_of(15) if c.code != PHUC_KHANH)
    code = await send_tip(world, world.demo.residents[0], start=f"/start c{other.code}")
    [card] = await wait_card(world, world.demo.province_group.id)
    assert card["text"].startswith(
        "⚠️ Xã chưa có nhóm tiếp nhận: tin được chuyển lên nhóm cấp tỉnh."
    )
    assert code in card["text"] and other.name in card["text"]
    assert (await tip_by_code(world, code)).queue_scope == "province"
    assert world.sandbox.bot_messages(world.demo.commune_group.id) == []


async def test_unrouted_tip_goes_to_the_ops_chat_flagged(world: World) -> None:
    hanoi = world.services.directory.search("hoan kiem ha noi", limit=1)[0].commune
    code = await send_tip(world, world.demo.residents[0], start=f"/start c{hanoi.code}")
    [card] = await wait_card(world, world.demo.ops_group.id)
    assert card["text"].startswith("⚠️ CHƯA ĐỊNH TUYẾN")
    assert code in card["text"]
    assert (await tip_by_code(world, code)).queue_scope == "ops"


# --- pictures ------------------------------------------------------------------------------


async def test_photo_sent_as_file_is_rebuilt_without_metadata(world: World) -> None:
    resident = world.demo.residents[0]
    prompt = await write_tip(world, resident)
    original = (PHOTOS / "DSCN0010.jpg").read_bytes()
    assert b"Exif" in original and b"NIKON" in original
    await world.sandbox.send_document(
        resident.id, original, file_name="DSCN0010.jpg", mime_type="image/jpeg"
    )
    await world.sandbox.send_document(
        resident.id, (PHOTOS / "portrait_6.jpg").read_bytes(), file_name="p.jpg",
        mime_type="image/jpeg",
    )
    [ack] = (await world.sandbox.wait_for_bot_messages(resident.id, 5))[4:]
    assert ack["text"] == "📷 Đã đính kèm 2/10 ảnh. Gửi thêm, hoặc bấm “Xong”."
    code = await confirm(world, resident, prompt)
    messages = await wait_card(world, world.demo.commune_group.id, 3)
    card, first, second = messages
    assert "📎 2 ảnh (gửi kèm bên dưới)" in card["text"]
    assert first["caption"] == f"Ảnh 1/2 – tin báo {code}"
    assert first.get("media_group_id") and first["media_group_id"] == second["media_group_id"]
    uploaded = [world.sandbox.file_bytes(m["photo"][-1]["file_id"]) for m in (first, second)]
    for data in uploaded:
        assert data[:2] == b"\xff\xd8"
        for marker in (b"Exif", b"NIKON", b"GPS", b"http://ns.adobe.com/xap", b"ICC_PROFILE"):
            assert marker not in data
        image = Image.open(io.BytesIO(data))
        assert not image.getexif() and "icc_profile" not in image.info
    portrait = Image.open(io.BytesIO(uploaded[1]))
    source = Image.open(PHOTOS / "portrait_6.jpg")
    assert portrait.height > portrait.width and source.width > source.height  # turned upright


async def test_bad_pictures_are_refused_politely_and_nothing_changes(world: World) -> None:
    resident = world.demo.residents[1]
    await write_tip(world, resident, text="Scam calls pretending to be the police.")
    bomb = io.BytesIO()
    Image.new("1", (20000, 20000)).save(bomb, "PNG")
    panorama = io.BytesIO()
    Image.new("RGB", (4200, 200), "gray").save(panorama, "PNG")
    cases = [
        # image01137.jpg's pixels are fine (only its metadata is broken, see test_photos):
        # a truncated copy is the malformed JPEG a resident's phone could really send
        (_truncated(PHOTOS / "image01137.jpg"), "bad.jpg", "image/jpeg",
         "This picture could not be read (the file seems damaged)."),
        (bomb.getvalue(), "big.png", "image/png",
         "This picture has too many pixels to be processed safely."),
        (b"%PDF-1.4 not a picture", "doc.pdf", "application/pdf",
         "Only pictures can be attached (JPEG, PNG, WebP or HEIC)."),
        (panorama.getvalue(), "wide.png", "image/png",  # sendPhoto takes aspect ratio <= 20
         "This picture is too long and narrow to be shown."),
    ]
    for data, name, mime, expected in cases:
        before = len(world.sandbox.bot_messages(resident.id))
        await world.sandbox.send_document(resident.id, data, file_name=name, mime_type=mime)
        [reply] = (await world.sandbox.wait_for_bot_messages(resident.id, before + 1))[before:]
        assert reply["text"].startswith(expected)
    view = await world.services.intake.current(
        world.services.pseudonyms.resident("tg", resident.id)
    )
    assert view is not None and view.photo_count == 0


async def test_oversize_description_is_refused_and_the_draft_kept(world: World) -> None:
    resident = world.demo.residents[0]
    [prompt] = await world.exchange(resident, f"/start c{PHUC_KHANH}")
    [prompt] = await press_and_wait(world, resident, prompt, "d:k:fraud")
    [prompt] = await press_and_wait(world, resident, prompt, "d:u:0")
    [reply] = await world.exchange(resident, "x" * 4001)
    assert reply["text"] == (
        "Nội dung quá dài (4001 ký tự; tối đa 4000). Vui lòng rút gọn rồi gửi lại. "
        "Chưa có gì được thêm."
    )
    [prompt] = await world.exchange(resident, "Ngắn gọn thôi.")
    assert prompt["text"].startswith("Đã ghi nhận.")


async def test_a_confirm_answered_too_late_still_commits_the_tip(world: World) -> None:
    """When the bot is >15 s behind Telegram refuses the callback answer ("query is too
    old"); the tip must be committed and the receipt sent all the same."""
    resident = world.demo.residents[0]
    prompt = await write_tip(world, resident)
    [review] = await press_and_wait(world, resident, prompt, "d:done")
    world.sandbox.world.callback_timeout = 0  # every answer is now too late
    before = len(world.sandbox.bot_messages(resident.id))
    await world.sandbox.press_button(resident.id, resident.id, review["message_id"], "d:ok")
    [receipt] = (await world.sandbox.wait_for_bot_messages(resident.id, before + 1))[before:]
    assert receipt["text"].startswith("✅ Đã nhận tin báo của bạn.")
    await wait_card(world, world.demo.commune_group.id)


async def test_cancel_deletes_the_draft(world: World) -> None:
    resident = world.demo.residents[0]
    await write_tip(world, resident)
    [reply] = await world.exchange(resident, "/cancel")
    assert reply["text"] == "Đã hủy tin báo đang soạn. Chưa có gì được gửi đi."
    async with world.services.db.session() as session:
        assert (await session.exec(select(Tip))).all() == []


# --- following a tip -----------------------------------------------------------------------


async def test_status_from_another_account_and_my_tips(world: World) -> None:
    author, stranger = world.demo.residents
    code = await send_tip(world, author)
    [reply] = await world.exchange(stranger, f"/status {code.lower().replace('-', ' ')}")
    assert reply["text"].startswith(f"Tip {code} (sent ")
    assert reply["text"].endswith("received, waiting for the police to take it up.")
    [reply] = await world.exchange(author, code)  # a code typed as plain text works too
    assert "đã nhận, đang chờ công an tiếp nhận" in reply["text"]
    [reply] = await world.exchange(author, "/mytips")
    assert reply["text"].startswith("Tin báo của bạn:\n• Tin báo " + code)
    [reply] = await world.exchange(stranger, "/mytips")
    assert reply["text"] == "You have not sent any tips from this account yet."


async def test_guessing_codes_is_throttled(world: World) -> None:
    guesser = world.demo.residents[1]
    for attempt in range(10):
        [reply] = await world.exchange(guesser, f"/status AAAA-AAA{attempt}")
        assert reply["text"] == "No tip has this code. Please check it and try again."
    [reply] = await world.exchange(guesser, "/status AAAA-AAAA")
    assert reply["text"] == "Too many wrong codes. Please try again in an hour."


async def test_hourly_limit_refuses_politely(world: World) -> None:
    resident = world.demo.residents[0]
    for _ in range(5):
        await send_tip(world, resident, text=f"Tin số {_}")
    [reply] = await world.exchange(resident, "/new")
    assert reply["text"].startswith("Bạn đã gửi 5 tin báo trong một giờ qua.")


async def test_identical_tip_within_minutes_is_merged(world: World) -> None:
    resident = world.demo.residents[0]
    first = await send_tip(world, resident, text="Cùng một nội dung")
    prompt = await write_tip(world, resident, text="Cùng một nội dung")
    [review] = await press_and_wait(world, resident, prompt, "d:done")
    [reply] = await press_and_wait(world, resident, review, "d:ok")
    assert reply["text"].startswith("Bạn vừa gửi một tin báo giống hệt")
    assert first in reply["text"]
    async with world.services.db.session() as session:
        assert len((await session.exec(select(Tip))).all()) == 1


async def test_admin_bans_the_reporter_behind_a_code(world: World) -> None:
    resident, admin, officer = world.demo.residents[0], world.demo.admin, world.demo.officer
    code = await send_tip(world, resident)
    group = world.demo.commune_group.id
    await wait_card(world, group)
    [reply] = await world.exchange(officer, f"/ban {code}", chat_id=group)
    assert reply["text"] == "Xin lỗi, chỉ quản trị viên hòm thư mới được chặn người gửi tin."
    [reply] = await world.exchange(admin, f"/ban {code}", chat_id=group)
    assert reply["text"].startswith("Người gửi tin báo này không thể gửi thêm tin báo.")
    [reply] = await world.exchange(resident, "/new")
    assert reply["text"].startswith("Xin lỗi, hòm thư không nhận tin báo từ tài khoản này.")
    [reply] = await world.exchange(admin, f"/ban {code}", chat_id=group)
    assert reply["text"] == "Người gửi tin báo này đã bị chặn từ trước."


# --- delivery guarantees -------------------------------------------------------------------


async def test_sandbox_errors_delay_but_do_not_lose_the_card(world: World) -> None:
    outbox = world.services.outbox
    await outbox.stop()
    code = await send_tip(world, world.demo.residents[0])
    world.sandbox.inject_errors("sendMessage", [
        (500, "Internal Server Error"), (429, "Too Many Requests: retry after 1", 1),
    ])
    assert world.runtime.application is not None
    outbox.start(TelegramTransport(world.runtime.application.bot))
    [card] = await world.sandbox.wait_for_bot_messages(world.demo.commune_group.id, 1, 15)
    assert code in card["text"]
    await asyncio.sleep(0.5)
    assert len(world.sandbox.bot_messages(world.demo.commune_group.id)) == 1
    async with world.services.db.session() as session:
        outbox = (await session.exec(
            select(OutboxMessage).where(OutboxMessage.kind == "tip_card")
        )).one()
    assert outbox.status == "sent" and outbox.attempts >= 2


async def test_kicked_from_the_commune_group_routes_to_the_province(world: World) -> None:
    world.sandbox.kick_bot(world.demo.commune_group.id)
    code = await send_tip(world, world.demo.residents[0])
    [card] = await wait_card(world, world.demo.province_group.id)
    assert code in card["text"]
    tip = await tip_by_code(world, code)
    await _until(lambda: _events_are(world, tip, ["received", "delivery_rerouted", "delivered"]))
    assert (await tip_by_code(world, code)).queue_scope == "province"


async def test_restart_after_commit_delivers_exactly_once(world: World) -> None:
    await world.services.outbox.stop()  # the bot "dies" between the commit and the delivery
    code = await send_tip(world, world.demo.residents[0])
    await asyncio.sleep(0.3)
    assert world.sandbox.bot_messages(world.demo.commune_group.id) == []
    await world.runtime.stop()
    await world.runtime.start()
    [card] = await wait_card(world, world.demo.commune_group.id)
    assert code in card["text"]
    await asyncio.sleep(1.0)
    assert len(world.sandbox.bot_messages(world.demo.commune_group.id)) == 1


# --- anonymity -----------------------------------------------------------------------------


async def test_no_identity_reaches_groups_tables_or_logs(world: World, caplog: Any) -> None:
    caplog.set_level("DEBUG")
    residents = world.demo.residents
    await send_tip(world, residents[0], text="Nội dung tin báo thứ nhất")
    prompt = await write_tip(world, residents[1], text="Second tip text")
    await world.sandbox.send_document(
        residents[1].id, (PHOTOS / "DSCN0010.jpg").read_bytes(), file_name="a.jpg",
        mime_type="image/jpeg",
    )
    await asyncio.sleep(1.5)
    # the pictures' acknowledgement carries the buttons now; the first prompt lost them
    ack = world.sandbox.bot_messages(residents[1].id)[-1]
    assert buttons(ack) == ["d:done", "d:x"] and buttons(
        next(m for m in world.sandbox.bot_messages(residents[1].id)
             if m["message_id"] == prompt["message_id"])) == []
    await confirm(world, residents[1], ack)
    await wait_card(world, world.demo.commune_group.id, 3)

    needles = set()
    for person in residents:
        needles |= {str(person.id), person.first_name, person.last_name or ""}
        needles |= {person.username or "", person.phone_number or ""}
    needles.discard("")
    group_text = json.dumps(
        [world.sandbox.transcript(c.id) for c in
         (world.demo.commune_group, world.demo.province_group, world.demo.ops_group)],
        ensure_ascii=False,
    )
    for needle in needles:
        assert needle not in group_text, needle
    assert "forward_origin" not in group_text and "forward_from" not in group_text
    assert not world.sandbox.method_calls("forwardMessage")
    assert not world.sandbox.method_calls("copyMessage")
    async with world.services.db.engine.connect() as conn:
        for table in ("tips", "tip_events", "tip_reporters", "outbox", "tip_cards", "residents",
                      "drafts", "photos", "group_links"):
            rows = (await conn.exec_driver_sql(f"SELECT * FROM {table}")).all()  # noqa: S608
            dump = json.dumps([[str(v) for v in r] for r in rows], ensure_ascii=False)
            for needle in needles:
                assert needle not in dump, (table, needle)
    for record in caplog.records:
        line = record.getMessage() + json.dumps(record.__dict__, default=str)
        for needle in needles:
            assert needle not in line, (record.name, needle, line[:300])


async def test_reporter_link_is_sealed(world: World) -> None:
    resident = world.demo.residents[0]
    await send_tip(world, resident)
    async with world.services.db.session() as session:
        reporter = (await session.exec(select(TipReporter))).one()
    assert str(resident.id) not in reporter.sealed_chat
    assert reporter.pseudonym != str(resident.id)


# --- helpers -------------------------------------------------------------------------------


def _truncated(path: Path) -> bytes:
    data = path.read_bytes()
    return data[: len(data) * 2 // 3]



async def _events_are(world: World, tip: Tip, expected: list[str]) -> bool:
    return await events(world, tip.id or 0) == expected


async def _until(condition: Any, timeout: float = 5.0) -> None:
    for _ in range(int(timeout / 0.02)):
        if await condition():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("condition not met in time")


# --- a draft in progress is never dropped silently -----------------------------------------


async def _draft_of(world: World, resident: SandboxUser) -> Any:
    return await world.services.intake.current(
        world.services.pseudonyms.resident(TELEGRAM, resident.id))


@pytest.mark.parametrize("again", ["/new", f"/start c{PHUC_KHANH}"], ids=["new", "qr-rescan"])
async def test_starting_again_asks_before_deleting_a_draft(world: World, again: str) -> None:
    resident = world.demo.residents[0]
    await write_tip(world, resident, text="Có người lạ đột nhập kho.")
    [question] = await world.exchange(resident, again)
    assert question["text"] == ("Bạn đang viết dở một tin báo (gửi cho: xã Phúc Khánh, tỉnh Lào "
                                "Cai; ảnh: 0). Tiếp tục tin đó, hay xoá để bắt đầu lại?")
    restart = "d:restart" if again == "/new" else f"d:restart:{PHUC_KHANH}"
    assert buttons(question) == ["d:resume", restart]
    draft = await _draft_of(world, resident)
    assert draft.description == "Có người lạ đột nhập kho." and draft.step == Step.ATTACHMENTS
    # continue: the current step is asked again, nothing lost
    [prompt] = await press_and_wait(world, resident, question, "d:resume")
    assert "d:done" in buttons(prompt)
    assert (await _draft_of(world, resident)).description == "Có người lạ đột nhập kho."
    # ask again and start over this time
    [question] = await world.exchange(resident, again)
    [prompt] = await press_and_wait(world, resident, question, restart)
    draft = await _draft_of(world, resident)
    assert draft.description is None
    assert draft.step == (Step.CATEGORY if again != "/new" else draft.step)
    assert "d:k:drugs" in buttons(prompt) or "d:x" in buttons(prompt)


async def test_an_empty_draft_is_simply_started_again(world: World) -> None:
    resident = world.demo.residents[0]
    await world.exchange(resident, f"/start c{PHUC_KHANH}")  # the category question
    [prompt] = await world.exchange(resident, "/new")
    assert "d:resume" not in buttons(prompt)


# --- what a new user tripped over (issue 9, section 5) -------------------------------------


def shown(world: World, message: dict[str, Any]) -> dict[str, Any]:
    """The message as the chat shows it now (after the bot's edits)."""
    chat = message["chat"]["id"]
    return next(m for m in world.sandbox.bot_messages(chat)
                if m["message_id"] == message["message_id"])


async def edited(world: World, message: dict[str, Any]) -> dict[str, Any]:
    """The message once the bot has edited it (an older prompt is closed just after the
    newer one is sent)."""
    for _attempt in range(100):
        now = shown(world, message)
        if now.get("edit_date") is not None:
            return now
        await asyncio.sleep(0.02)
    raise AssertionError(f"message {message['message_id']} was never edited")


async def test_a_new_user_sees_the_welcome_and_each_answer(world: World) -> None:
    resident = world.demo.residents[0]  # Vietnamese
    [first] = await world.exchange(resident, f"/start c{PHUC_KHANH}")
    # 1: anonymity and 113 in one short line at the first prompt after the QR code
    assert first["text"].splitlines()[-1] == (
        "🔒 Ẩn danh: công an không bao giờ thấy tên, tài khoản hay số điện thoại của bạn. "
        "Trường hợp khẩn cấp, gọi 113.")
    # 5: "xã"/"tỉnh" in lower case inside the sentence
    assert first["text"].startswith("Gửi cho: xã Phúc Khánh, tỉnh Lào Cai")
    [urgency] = await press_and_wait(world, resident, first, "d:k:drugs")
    # 4: the answered prompt shows the answer and has no buttons
    assert shown(world, first)["text"] == "Gửi cho: xã Phúc Khánh, tỉnh Lào Cai\nLoại: Ma túy ✓"
    assert buttons(shown(world, first)) == []
    [description] = await press_and_wait(world, resident, urgency, "d:u:1")
    assert description["text"].startswith("🔴 Nếu có người đang gặp nguy hiểm, hãy GỌI NGAY 113.")
    assert shown(world, urgency)["text"] == "Khẩn cấp: có ✓" and not buttons(shown(world, urgency))
    [attachments] = await world.exchange(resident, "Có người đang đánh nhau ở chợ.")
    # 3: said by what the user sees
    assert "(gửi vị trí: nút đính kèm 📎 → Vị trí)" in attachments["text"]
    before = len(world.sandbox.bot_messages(resident.id))
    await world.sandbox.send_location(resident.id, 22.1, 104.1)
    [located] = (await world.sandbox.wait_for_bot_messages(resident.id, before + 1))[before:]
    # 3: the reply to a location has "Done" (no scrolling up); the older prompt lost it
    assert located["text"].startswith("📍 Đã thêm vị trí nơi xảy ra sự việc.")
    assert buttons(located) == ["d:done", "d:x"]
    assert buttons(await edited(world, attachments)) == []
    [review] = await press_and_wait(world, resident, located, "d:done")
    assert shown(world, located)["text"] == "Ảnh: 0 · Vị trí: có ✓"
    assert "Bấm “Gửi tin báo” để gửi." in review["text"]
    [receipt] = await press_and_wait(world, resident, review, "d:ok")
    assert receipt["text"].startswith("✅ Đã nhận tin báo của bạn.")
    # 4: the review says it was sent, without "tap Send" and without buttons
    after = await edited(world, review)
    assert after["text"].startswith("Tin báo của bạn (đã gửi):")
    assert "Bấm “Gửi tin báo”" not in after["text"] and "✅ Đã gửi." in after["text"]
    assert buttons(after) == []


async def test_an_unknown_command_gets_a_hint_and_is_never_a_description(world: World) -> None:
    resident = world.demo.residents[0]
    [prompt] = await world.exchange(resident, f"/start c{PHUC_KHANH}")
    [prompt] = await press_and_wait(world, resident, prompt, "d:k:drugs")
    [prompt] = await press_and_wait(world, resident, prompt, "d:u:0")  # the description step
    [reply] = await world.exchange(resident, "/foo bar")
    assert reply["text"] == "Ở đây không có lệnh này. Gõ /help để xem bạn có thể làm gì."
    draft = await _draft_of(world, resident)
    assert draft.step == Step.DESCRIPTION and draft.description is None
