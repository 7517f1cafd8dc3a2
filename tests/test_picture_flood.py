"""Floods of pictures end to end (real PTB, our runtime and the sandbox, in this process):
memory stays bounded, the bot keeps answering, nothing is downloaded past the limits."""

from __future__ import annotations

import asyncio
import io
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from PIL import Image
from sqlmodel import select

from bot.conversation.pictures import photo_refusal
from bot.domain.intake import MAX_PHOTOS
from bot.domain.picture_jobs import PICTURE_WORKERS
from bot.sandbox import SandboxUser
from bot.telegram_http import AiohttpRequest, DownloadTooLarge
from storage.models import Photo
from tests.conftest import World
from tests.test_intake_bot import write_tip
from tests.test_photos import png_of_zeros

MB = 1024 * 1024
RSS_BOUND = 300 * MB  # growth allowed while a flood is handled
PHOTO_ACK_SETTLE = 1.5  # bot.conversation.core.PHOTO_ACK_DELAY_SECONDS and a margin


@pytest.fixture(scope="session")
def png_bomb(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """7071x7071 RGBA zeros: 190 KB on the wire, 200 MB of pixels (built once)."""
    path: Path = tmp_path_factory.getbasetemp() / "bomb-7071.png"
    if not path.exists():
        path.write_bytes(png_of_zeros(7071, 7071))
    return path.read_bytes()


def rss() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


@contextmanager
def peak_rss_growth() -> Iterator[list[int]]:
    """Samples this process's RSS every 5 ms; yields [growth] filled in at the end."""
    baseline, peak = rss(), [rss()]
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(0.005):
            peak[0] = max(peak[0], rss())

    sampler = threading.Thread(target=sample, name="rss-sampler", daemon=True)
    sampler.start()
    growth = [0]
    try:
        yield growth
    finally:
        stop.set()
        sampler.join()
        growth[0] = max(peak[0], rss()) - baseline


def pseudonym(world: World, user: SandboxUser) -> str:
    return world.services.pseudonyms.resident("tg", user.id)


async def send_pictures(world: World, user: SandboxUser, pictures: list[bytes]) -> None:
    for index, data in enumerate(pictures):
        await world.sandbox.send_document(
            user.id, data, file_name=f"picture-{index}.png", mime_type="image/png"
        )


async def test_thirteen_png_bombs_leave_memory_flat_and_the_bot_answering(
    world: World, png_bomb: bytes
) -> None:
    resident, other = world.demo.residents
    await write_tip(world, resident)
    before = len(world.sandbox.bot_messages(resident.id))
    texts = world.services.translator.for_language("vi")
    expected = {photo_refusal("bomb", texts), photo_refusal("too_many_photos", texts)}

    with peak_rss_growth() as growth:
        await send_pictures(world, resident, [png_bomb] * 13)
        # someone else, meanwhile, gets an answer
        [help_reply] = await world.exchange(other, "/help")
        replies = (await world.sandbox.wait_for_bot_messages(
            resident.id, before + 13, timeout=60
        ))[before:]

    assert growth[0] < RSS_BOUND, f"RSS grew by {growth[0] / MB:.0f} MB"
    assert "/new" in help_reply["text"]
    assert len(replies) == 13
    assert {reply["text"] for reply in replies} <= expected
    view = await world.services.intake.current(pseudonym(world, resident))
    assert view is not None and view.photo_count == 0
    assert world.services.pictures.busiest <= PICTURE_WORKERS
    await asyncio.sleep(PHOTO_ACK_SETTLE)
    assert len(world.sandbox.bot_messages(resident.id)) == before + 13  # no "attached" ack


async def test_a_full_draft_refuses_the_next_picture_without_downloading_it(
    world: World,
) -> None:
    resident = world.demo.residents[0]
    await write_tip(world, resident)
    small = io.BytesIO()
    Image.new("RGB", (64, 48), "gray").save(small, "PNG")
    before = len(world.sandbox.bot_messages(resident.id))
    # twelve at once: the draft takes ten, two are refused
    await send_pictures(world, resident, [small.getvalue()] * (MAX_PHOTOS + 2))
    await world.sandbox.wait_for_bot_messages(resident.id, before + 3, timeout=20)
    await asyncio.sleep(PHOTO_ACK_SETTLE)
    texts = [m["text"] for m in world.sandbox.bot_messages(resident.id)[before:]]
    too_many = photo_refusal("too_many_photos", world.services.translator.for_language("vi"))
    assert texts.count(too_many) == 2
    acks = [text for text in texts if text.startswith("📷")]
    assert acks[-1].startswith("📷 Đã đính kèm 10/10 ảnh.")
    assert len(texts) == 2 + len(acks)
    view = await world.services.intake.current(pseudonym(world, resident))
    assert view is not None and view.photo_count == MAX_PHOTOS

    downloads = len(world.sandbox.method_calls("getFile"))
    [reply] = await _send_and_wait(world, resident, small.getvalue())
    assert reply["text"] == too_many == "Mỗi tin báo có tối đa 10 ảnh. Ảnh này không được thêm."
    assert len(world.sandbox.method_calls("getFile")) == downloads  # not downloaded


async def test_pictures_under_the_budget_are_decoded_on_the_picture_pool(world: World) -> None:
    resident = world.demo.residents[0]
    await write_tip(world, resident)
    # 4000x4000 RGB: 64,000,000 bytes of pixels, just under the 64 MiB budget
    picture = png_of_zeros(4000, 4000, colour_type=2)
    before = len(world.sandbox.bot_messages(resident.id))
    with peak_rss_growth() as growth:
        await send_pictures(world, resident, [picture] * 5)
        for _ in range(600):
            view = await world.services.intake.current(pseudonym(world, resident))
            assert view is not None
            if view.photo_count == 5:
                break
            await asyncio.sleep(0.1)
    await asyncio.sleep(PHOTO_ACK_SETTLE)
    texts = [m["text"] for m in world.sandbox.bot_messages(resident.id)[before:]]
    assert texts and all(text.startswith("📷 Đã đính kèm") for text in texts)
    assert texts[-1].startswith("📷 Đã đính kèm 5/10 ảnh.")
    async with world.services.db.session() as session:
        stored = (await session.exec(select(Photo))).all()
    assert [(photo.width, photo.height) for photo in stored] == [(2560, 2560)] * 5
    assert world.services.pictures.busiest == PICTURE_WORKERS == 1
    picture_threads = [t.name for t in threading.enumerate() if t.name.startswith("picture_")]
    assert 1 <= len(picture_threads) <= PICTURE_WORKERS
    assert growth[0] < RSS_BOUND, f"RSS grew by {growth[0] / MB:.0f} MB"


async def _send_and_wait(world: World, user: SandboxUser, data: bytes) -> list[dict[str, object]]:
    before = len(world.sandbox.bot_messages(user.id))
    await send_pictures(world, user, [data])
    return (await world.sandbox.wait_for_bot_messages(user.id, before + 1))[before:]


async def test_a_bomb_sent_as_an_answer_is_refused_and_nothing_is_relayed(
    world: World, png_bomb: bytes
) -> None:
    from tests.test_triage_bot import (
        _events_include,
        _prompt_recorded,
        _reply_in_group,
        card_shows,
        current,
        delivered_tip,
        events_of,
        until,
    )

    tip, card = await delivered_tip(world)
    officer, resident = world.demo.officer, world.demo.residents[0]
    group = world.demo.commune_group.id
    await world.press(officer, card, f"t:{tip.id}:ack")
    await card_shows(world, card, "Đã tiếp nhận")
    before = len(world.sandbox.bot_messages(group))
    await world.press(officer, current(world, card), f"t:{tip.id}:ask")
    [prompt] = (await world.sandbox.wait_for_bot_messages(group, before + 1))[before:]
    await _prompt_recorded(world, group, prompt)
    await _reply_in_group(world, officer, group, prompt, "Có ảnh không?")
    await until(lambda: _events_include(world, tip, "reporter_notified", 2))
    question = next(m for m in world.sandbox.bot_messages(resident.id)
                    if m["text"].startswith("❓"))

    in_group = len(world.sandbox.bot_messages(group))
    before = len(world.sandbox.bot_messages(resident.id))
    await world.sandbox.send_document(
        resident.id, png_bomb, file_name="bomb.png", mime_type="image/png",
        reply_to_message_id=question["message_id"],
    )
    [reply] = (await world.sandbox.wait_for_bot_messages(resident.id, before + 1))[before:]
    assert reply["text"] == photo_refusal("bomb", world.services.translator.for_language("vi"))
    await asyncio.sleep(0.5)
    assert len(world.sandbox.bot_messages(group)) == in_group
    assert "answer" not in await events_of(world, tip)


async def test_a_file_over_20_mb_is_refused_without_downloading_it(world: World) -> None:
    resident = world.demo.residents[0]
    await write_tip(world, resident)
    downloads = len(world.sandbox.method_calls("getFile"))
    big = b"\x89PNG\r\n\x1a\n" + bytes(20 * MB)
    [reply] = await _send_and_wait(world, resident, big)
    assert reply["text"] == "Ảnh quá lớn (tối đa 20 MB). Ảnh không được thêm."
    assert len(world.sandbox.method_calls("getFile")) == downloads


async def test_the_download_itself_stops_past_its_limit(world: World) -> None:
    resident = world.demo.residents[1]  # no draft: the bot only says how to start one
    sent = await world.sandbox.send_document(
        resident.id, bytes(300_000), file_name="a.png", mime_type="image/png"
    )
    bot = world.runtime.application.bot if world.runtime.application else None
    assert bot is not None and isinstance(bot.request, AiohttpRequest)
    telegram_file = await bot.get_file(sent["document"]["file_id"])
    assert telegram_file.file_path is not None
    assert len(await bot.request.download(telegram_file.file_path, 300_000)) == 300_000
    with pytest.raises(DownloadTooLarge):
        await bot.request.download(telegram_file.file_path, 299_999)
