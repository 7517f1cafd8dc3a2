"""What the reporter is told about their tip (in their language), and what the group is told
about the reporter (under the per-tip alias, never more)."""

from __future__ import annotations

import html
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from bot.domain.cards import reporter_alias
from bot.domain.communes import CommuneDirectory
from bot.domain.sealing import ChatSealer, ReplyAddress
from bot.i18n import DEFAULT_LANGUAGE, N_, Gettext, Translator
from storage.models import Resident, Tip, TipReporter

PUBLIC_OUTCOMES = {
    "agency": N_("it was passed to the competent investigation agency"),
    "admin": N_("it was handled under administrative rules"),
    "unfounded": N_("it was verified; there are no grounds to act on it"),
    "duplicate": N_("it duplicates another tip that is being handled"),
}


def receipt_text(_: Gettext, code: str, *, duplicate: bool) -> str:
    """The receipt (HTML: the code in ``<code>``), sent by the confirm handler at once or,
    when that send fails or the process dies, by the outbox; the same words either way."""
    if duplicate:
        text = _(
            "You sent this same tip a few minutes ago, so the two were merged. "
            "Its receipt code is {code}."
        )
    else:
        text = _("✅ Your tip was received. Receipt code: {code}") + "\n\n" + _(
            "Keep this code: send /status {code} from any phone to see what happened to "
            "your tip, or /mytips in this chat."
        )
    return text.format(code=f"<code>{html.escape(code)}</code>")


class ReporterNotices:
    def __init__(
        self, translator: Translator, sealer: ChatSealer, directory: CommuneDirectory
    ) -> None:
        self._translator = translator
        self._sealer = sealer
        self._directory = directory

    def open(self, sealed: str) -> ReplyAddress:
        return self._sealer.open(sealed)

    async def language_of(self, session: AsyncSession, reporter: TipReporter | None) -> str:
        if reporter is None:
            return DEFAULT_LANGUAGE
        resident = await session.get(Resident, reporter.pseudonym)
        return resident.language if resident and resident.language else DEFAULT_LANGUAGE

    def render(self, tip: Tip, payload: dict[str, Any], language: str) -> str:
        _ = self._translator.for_language(language)
        commune = self._directory.commune(tip.commune_code)
        police = _("{commune} police").format(commune=commune.name if commune else "")
        notice = payload.get("notice")
        if notice == "ack":
            return _("Your tip {code} was taken up by {police}. Thank you.").format(
                code=tip.code, police=police)
        if notice == "done":
            outcome = _(PUBLIC_OUTCOMES.get(str(payload.get("choice")), PUBLIC_OUTCOMES["admin"]))
            return _("Your tip {code} has been processed: {outcome}. Thank you for your help.") \
                .format(code=tip.code, outcome=outcome)
        if notice == "invalid":
            return _("Your tip {code} was reviewed; there are not enough grounds to act on it. "
                     "Thank you.").format(code=tip.code)
        if notice == "question":
            return _("❓ {police} have a question about your tip {code}:").format(
                police=police, code=tip.code) + "\n\n" + str(payload.get("text", "")) + "\n\n" + _(
                "To answer, reply to this message (swipe it or tap “Reply”), or send "
                "/answer {code} followed by your answer.").format(code=tip.code)
        raise ValueError(f"unknown notice {notice!r}")

    def receipt(self, code: str, language: str, *, duplicate: bool = False) -> str:
        return receipt_text(self._translator.for_language(language), code, duplicate=duplicate)

    def unreachable(self, tip: Tip) -> str:
        assert tip.id is not None
        return (f"⚠️ Không thể liên lạc với {reporter_alias(tip.id)} (tin báo "
                f"<code>{tip.code}</code>): người báo tin đã chặn bot hoặc thông tin liên lạc "
                "đã hết thời hạn lưu trữ.")

    def answer_in_group(self, tip: Tip, text: str | None) -> str:
        assert tip.id is not None
        body = html.escape(text) if text else "(ảnh)"
        return (f"💬 <b>{reporter_alias(tip.id)} trả lời</b> (tin báo <code>{tip.code}</code>):"
                f"\n{body}")
