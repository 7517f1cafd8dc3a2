"""What a resident writes under a picture reaches the police with it: kept with the picture,
shown in the review and under the picture in the group; at the description step a captioned
picture is the description and the first picture."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from sqlmodel import col, select

from storage.models import Photo
from tests.conftest import World
from tests.test_intake_bot import PHUC_KHANH, buttons, confirm, press_and_wait, wait_card, write_tip

PHOTOS = Path(__file__).parent / "fixtures" / "photos"
CAPTION = "Biển số 24B1-555.66, người mặc áo đỏ"


async def test_a_caption_travels_with_its_picture(world: World) -> None:
    resident = world.demo.residents[0]
    prompt = await write_tip(world, resident)
    before = len(world.sandbox.bot_messages(resident.id))
    await world.sandbox.send_photo(resident.id, (PHOTOS / "jolla.jpg").read_bytes(),
                                   caption=CAPTION)
    [ack] = (await world.sandbox.wait_for_bot_messages(resident.id, before + 1))[before:]
    assert ack["text"] == ("📷 Đã đính kèm 1/10 ảnh. Gửi thêm, hoặc bấm “Xong”.\n"
                           "Chú thích được giữ cùng ảnh và chuyển đến công an.")
    [review] = await press_and_wait(world, resident, prompt, "d:done")
    assert f"📷 1: {CAPTION}" in review["text"]
    [receipt] = await press_and_wait(world, resident, review, "d:ok")
    code = next(receipt["text"][e["offset"]:e["offset"] + e["length"]]
                for e in receipt["entities"] if e["type"] == "code")
    card, photo = await wait_card(world, world.demo.commune_group.id, 2)
    assert photo["caption"] == f"Ảnh 1/1 – tin báo {code}\n“{CAPTION}”"
    assert "📎 1 ảnh (gửi kèm bên dưới)" in card["text"]


async def test_a_captioned_picture_at_the_description_step_is_the_description(
    world: World,
) -> None:
    resident = world.demo.residents[0]
    [prompt] = await world.exchange(resident, f"/start c{PHUC_KHANH}")
    [prompt] = await press_and_wait(world, resident, prompt, "d:k:traffic")
    [prompt] = await press_and_wait(world, resident, prompt, "d:u:0")
    before = len(world.sandbox.bot_messages(resident.id))
    await world.sandbox.send_photo(resident.id, (PHOTOS / "jolla.jpg").read_bytes(),
                                   caption=CAPTION)
    attachments, ack = (await world.sandbox.wait_for_bot_messages(resident.id, before + 2))[
        before:]
    assert "d:done" in buttons(attachments)
    assert ack["text"].startswith("📷 Đã đính kèm 1/10 ảnh.")
    code = await confirm(world, resident, attachments)
    card, photo = await wait_card(world, world.demo.commune_group.id, 2)
    assert CAPTION in card["text"] and code in card["text"]
    assert photo["caption"] == f"Ảnh 1/1 – tin báo {code}"  # said once, on the card


async def test_a_too_long_caption_is_refused_and_nothing_is_added(world: World) -> None:
    resident = world.demo.residents[0]
    await write_tip(world, resident)
    before = len(world.sandbox.bot_messages(resident.id))
    calls = len(world.sandbox.method_calls("getFile"))
    await world.sandbox.send_photo(resident.id, (PHOTOS / "jolla.jpg").read_bytes(),
                                   caption="x" * 1000)
    [reply] = (await world.sandbox.wait_for_bot_messages(resident.id, before + 1))[before:]
    assert reply["text"].startswith("Chú thích này quá dài (1000 ký tự; tối đa 900).")
    await world.sandbox.wait_idle()
    assert len(world.sandbox.method_calls("getFile")) == calls  # not even downloaded
    async with world.services.db.session() as session:
        assert (await session.exec(select(col(Photo.id)))).all() == []


async def test_ten_long_captions_and_a_long_description_still_fit_the_review(
    world: World,
) -> None:
    resident = world.demo.residents[0]
    await write_tip(world, resident, text="Mô tả dài. " * 360)  # ~3,960 characters
    picture = (PHOTOS / "jolla.jpg").read_bytes()
    for number in range(10):
        await world.sandbox.send_photo(resident.id, picture, caption=f"{number} " + "chữ " * 220)
    for _ in range(600):  # the album's acknowledgement: all ten attached
        if any("10/10" in (m.get("text") or "") for m in world.sandbox.bot_messages(resident.id)):
            break
        await asyncio.sleep(0.05)
    latest = next(m for m in reversed(world.sandbox.bot_messages(resident.id))
                  if "d:done" in buttons(m))  # only the newest prompt keeps its buttons
    [review] = await press_and_wait(world, resident, latest, "d:done")
    assert buttons(review) == ["d:ok", "d:x"] and len(review["text"]) <= 4096
    assert review["text"].count("📷 ") == 10
    code = await confirm_review(world, resident, review)
    messages = await wait_card(world, world.demo.commune_group.id, 11)
    assert all(m.get("caption", "").count("chữ") == 220 for m in messages[-10:])  # whole
    assert code in messages[0]["text"]


async def confirm_review(world: World, resident: Any, review: dict[str, Any]) -> str:
    [receipt] = await press_and_wait(world, resident, review, "d:ok")
    return next(receipt["text"][e["offset"]:e["offset"] + e["length"]]
                for e in receipt["entities"] if e["type"] == "code")
