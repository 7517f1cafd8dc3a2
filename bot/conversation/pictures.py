"""Pictures from residents, one path for every channel and every use (a tip's attachments,
an answer to a police question): the size and count checks before anything is fetched, the
sanitiser on the bounded picture pool, the shape check, and the polite sentence for each
refusal. How the bytes are fetched is the channel's (handlers/pictures.py for Telegram)."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Final, NoReturn

from bot.conversation.model import Fetch
from bot.domain.intake import MAX_PHOTOS
from bot.domain.photos import MAX_INPUT_BYTES, PhotoRejected, SanitisedPhoto
from bot.domain.picture_jobs import PictureJobs, PictureLimit
from bot.i18n import Gettext

log = logging.getLogger(__name__)

MAX_ASPECT_RATIO: Final = 20  # Bot API sendPhoto refuses longer/narrower pictures


class PictureRefused(Exception):
    """A picture not taken; ``reason`` is a key of :func:`photo_refusal`."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@contextlib.asynccontextmanager
async def received_picture(
    jobs: PictureJobs, owner: str, fetch: Fetch, size: int | None, *,
    already: int = 0, limit: int | None = None,
) -> AsyncIterator[SanitisedPhoto]:
    """The sanitised picture, for the block to store it. Its place among ``owner``'s
    pictures in work is held until the block ends; ``already`` stored and at most
    ``limit`` in all (a draft's pictures). Raises :class:`PictureRefused` before the
    block runs; nothing is fetched when the announced size or the count refuses.
    """
    if size is not None and size > MAX_INPUT_BYTES:
        _refused("too_large")
    with contextlib.ExitStack() as held:
        try:
            held.enter_context(jobs.reserve(owner, already=already, limit=limit))
            photo = await jobs.process(fetch)
        except PictureLimit as error:
            _refused(error.reason)
        except PhotoRejected as rejected:
            _refused(rejected.reason)
        if not sendable_shape(photo):
            _refused("shape")
        yield photo


def _refused(reason: str) -> NoReturn:
    log.info("picture refused", extra={"status": reason})
    raise PictureRefused(reason) from None


def sendable_shape(photo: SanitisedPhoto) -> bool:
    return max(photo.width, photo.height) <= MAX_ASPECT_RATIO * min(photo.width, photo.height)


def photo_refusal(reason: str, _: Gettext) -> str:
    sentences = {
        "too_large": _("This picture is too big (at most 20 MB). It was not added."),
        "not_image": _("This file is not a picture. Please send JPEG, PNG, WebP or HEIC "
                       "pictures. It was not added."),
        "unsupported_format": _("This picture format is not supported. Please send JPEG, PNG, "
                                "WebP or HEIC. It was not added."),
        "bomb": _("This picture has too many pixels to be processed safely. Please send it as "
                  "a photo (not as a file), or send a smaller picture. It was not added."),
        "corrupt": _("This picture could not be read (the file seems damaged). Please send "
                     "another one. It was not added."),
        "shape": _("This picture is too long and narrow to be shown. Please crop it and send it "
                   "again. It was not added."),
        "heic_unavailable": _("HEIC files cannot be read here yet. Please send the picture as "
                              "a photo (not as a file). It was not added."),
        "too_many_photos": _("A tip can have at most {limit} pictures. This one was not added.")
        .format(limit=MAX_PHOTOS),
        "busy": _("Many pictures are being processed right now. Please send this one again in "
                  "a minute. It was not added."),
    }
    return sentences.get(reason, sentences["corrupt"])
