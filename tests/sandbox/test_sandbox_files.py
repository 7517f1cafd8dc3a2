"""Files through the sandbox: uploads keep exact bytes, photos from people lose metadata."""

from __future__ import annotations

import io

import pytest
from PIL import Image
from telegram import Bot, InputMediaDocument, InputMediaPhoto, ReplyParameters
from telegram.error import BadRequest

from bot.sandbox import BotApiSandbox, SandboxUser

GPS_IFD = 0x8825


def image(width: int, height: int, *, gps: bool = False, fmt: str = "JPEG") -> bytes:
    picture = Image.new("RGB", (width, height), (30, 120, 200))
    buffer = io.BytesIO()
    if gps:
        exif = Image.Exif()
        exif[0x010F] = "PhoneMaker"
        exif.get_ifd(GPS_IFD).update({1: "N", 2: (21.0, 1.0, 30.0), 3: "E", 4: (105.0, 50.0, 1.0)})
        picture.save(buffer, fmt, exif=exif, comment=b"secret comment")
    else:
        picture.save(buffer, fmt)
    return buffer.getvalue()


def has_metadata(data: bytes) -> bool:
    with Image.open(io.BytesIO(data)) as opened:
        return bool(opened.getexif()) or "comment" in opened.info or "icc_profile" in opened.info


async def test_bot_photo_upload_keeps_exact_bytes(
    sandbox: BotApiSandbox, bot: Bot, lan: SandboxUser
) -> None:
    upload = image(1000, 500, fmt="PNG")
    sent = await bot.send_photo(lan.id, upload, caption="Ảnh đã làm mờ")
    sizes = sent.photo
    assert [max(s.width, s.height) for s in sizes] == [90, 320, 800, 1000]
    assert sandbox.file_bytes(sizes[-1].file_id) == upload
    assert sizes[-1].file_size == len(upload)
    assert sandbox.file_bytes(sizes[0].file_id)[:2] == b"\xff\xd8"  # thumbnails are JPEG
    assert sandbox.method_calls("sendPhoto")[0]["params"]["photo"]["size"] == len(upload)


async def test_photo_file_id_reuse_and_errors(bot: Bot, lan: SandboxUser) -> None:
    first = await bot.send_photo(lan.id, image(300, 200))
    again = await bot.send_photo(lan.id, first.photo[-1].file_id)
    assert [s.file_unique_id for s in again.photo] == [s.file_unique_id for s in first.photo]
    with pytest.raises(BadRequest, match="Wrong file identifier"):
        await bot.send_photo(lan.id, "AgACAgUAAxkBAAI-not-a-real-id")
    with pytest.raises(BadRequest, match="Type of file mismatch"):
        await bot.send_document(lan.id, first.photo[-1].file_id)
    with pytest.raises(BadRequest, match="Image_process_failed"):
        await bot.send_photo(lan.id, b"not an image at all")
    with pytest.raises(BadRequest, match="Message caption is too long"):
        await bot.send_photo(lan.id, first.photo[-1].file_id, caption="x" * 1025)
    with pytest.raises(BadRequest, match="Photo_invalid_dimensions"):
        await bot.send_photo(lan.id, image(9000, 1200))


async def test_document_upload_and_download_through_ptb(
    sandbox: BotApiSandbox, bot: Bot, lan: SandboxUser
) -> None:
    payload = b"%PDF-1.7\n" + bytes(range(256)) * 40
    sent = await bot.send_document(lan.id, payload, filename="bien-ban.pdf", caption="Biên bản")
    doc = sent.document
    assert (doc.file_name, doc.mime_type, doc.file_size) == ("bien-ban.pdf", "application/pdf",
                                                            len(payload))
    assert sandbox.file_bytes(doc.file_id) == payload
    telegram_file = await bot.get_file(doc.file_id)
    assert telegram_file.file_path and telegram_file.file_path.startswith(sandbox.base_file_url)
    assert bytes(await telegram_file.download_as_bytearray()) == payload
    reused = await bot.send_document(lan.id, doc.file_id)
    assert reused.document.file_unique_id == doc.file_unique_id


async def test_media_group_upload(sandbox: BotApiSandbox, bot: Bot, lan: SandboxUser) -> None:
    uploads = [image(400, 300), image(300, 400), image(200, 200)]
    media = [InputMediaPhoto(data, caption=f"ảnh {i}") for i, data in enumerate(uploads)]
    messages = await bot.send_media_group(lan.id, media)
    assert len(messages) == 3
    assert len({m.media_group_id for m in messages}) == 1
    assert [m.caption for m in messages] == ["ảnh 0", "ảnh 1", "ảnh 2"]
    assert [sandbox.file_bytes(m.photo[-1].file_id) for m in messages] == uploads
    docs = await bot.send_media_group(
        lan.id, [InputMediaDocument(b"a", filename="a.txt"), InputMediaDocument(b"b",
                                                                                 filename="b.txt")]
    )
    assert [sandbox.file_bytes(m.document.file_id) for m in docs] == [b"a", b"b"]
    with pytest.raises(BadRequest):
        await bot.send_media_group(lan.id, [InputMediaPhoto(uploads[0])])


async def test_people_photos_are_recompressed_without_metadata(
    sandbox: BotApiSandbox, bot: Bot, lan: SandboxUser
) -> None:
    original = image(2000, 1500, gps=True)
    assert has_metadata(original)
    message = await sandbox.send_photo(lan.id, original, caption="hiện trường")
    sizes = message["photo"]
    assert [max(s["width"], s["height"]) for s in sizes] == [90, 320, 800, 1280]
    for size in sizes:
        data = sandbox.file_bytes(size["file_id"])
        assert len(data) == size["file_size"] and not has_metadata(data)
    small = await sandbox.send_photo(lan.id, image(200, 100))
    assert [s["width"] for s in small["photo"]] == [90, 200]
    update_file = await bot.get_file(sizes[-1]["file_id"])
    assert bytes(await update_file.download_as_bytearray()) == sandbox.file_bytes(
        sizes[-1]["file_id"]
    )


async def test_people_documents_keep_exif(sandbox: BotApiSandbox, lan: SandboxUser) -> None:
    original = image(640, 480, gps=True)
    message = await sandbox.send_document(
        lan.id, original, file_name="IMG_0001.JPG", mime_type="image/jpeg"
    )
    assert sandbox.file_bytes(message["document"]["file_id"]) == original
    assert message["document"]["mime_type"] == "image/jpeg"


async def test_get_file_refuses_files_over_20_mb(
    sandbox: BotApiSandbox, bot: Bot, lan: SandboxUser
) -> None:
    big = await sandbox.send_document(
        lan.id, b"\0" * (20 * 1024 * 1024 + 1), file_name="video.mp4", mime_type="video/mp4"
    )
    with pytest.raises(BadRequest, match="File is too big"):
        await bot.get_file(big["document"]["file_id"])


async def test_forward_shows_the_sender_but_copy_does_not(
    sandbox: BotApiSandbox, bot: Bot, lan: SandboxUser
) -> None:
    officer = sandbox.create_user("Bình")
    group = sandbox.create_group("Công an xã", admins=[officer.id])
    tip = await sandbox.send_text(lan.id, "Có người lạ ở ngõ 3")
    forwarded = await bot.forward_message(group.id, lan.id, tip["message_id"])
    origin = sandbox.transcript(group.id)[-1]["forward_origin"]
    assert origin["sender_user"]["id"] == lan.id
    assert forwarded.forward_origin is not None and forwarded.text == "Có người lạ ở ngõ 3"
    copied = await bot.copy_message(group.id, lan.id, tip["message_id"])
    copy_json = sandbox.transcript(group.id)[-1]
    assert copy_json["message_id"] == copied.message_id and "forward_origin" not in copy_json
    with pytest.raises(BadRequest, match="Message to forward not found"):
        await bot.forward_message(group.id, lan.id, 999)


async def test_reply_across_chats_names_the_author(
    sandbox: BotApiSandbox, bot: Bot, lan: SandboxUser
) -> None:
    group = sandbox.create_group("Công an xã")
    tip = await sandbox.send_text(lan.id, "Có người lạ ở ngõ 3")
    sent = await bot.send_message(
        group.id, "Tin báo mới",
        reply_parameters=ReplyParameters(tip["message_id"], chat_id=lan.id, quote="ngõ 3"),
    )
    assert sent.external_reply is not None and sent.quote is not None
    stored = sandbox.transcript(group.id)[-1]
    assert stored["external_reply"]["origin"]["sender_user"]["id"] == lan.id
    assert stored["quote"] == {"text": "ngõ 3", "position": 14, "is_manual": True}
