"""What the reporter is told about their tip (in their language), and what the group is told
about the reporter (under the per-tip alias, never more)."""

from __future__ import annotations

import html
from typing import TYPE_CHECKING

from bot.domain.cards import TipView, reporter_alias
from bot.domain.communes import CommuneDirectory
from bot.domain.sealing import ChatSealer, ReplyAddress
from bot.i18n import N_, Gettext, Translator

if TYPE_CHECKING:
    from bot.domain.outbox.payloads import ReporterNoticePayload

POLICE_LANGUAGE = "vi"  # police texts are Vietnamese

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

    def render(self, tip: TipView, payload: ReporterNoticePayload, language: str) -> str:
        _ = self._translator.for_language(language)
        commune = self._directory.commune(tip.commune_code)
        police = _("{commune} police").format(commune=commune.name if commune else "")
        notice = payload.notice
        if notice == "ack":
            return _("Your tip {code} was taken up by {police}. Thank you.").format(
                code=tip.code, police=police)
        if notice == "done":
            outcome = _(PUBLIC_OUTCOMES.get(str(payload.choice), PUBLIC_OUTCOMES["admin"]))
            return _("Your tip {code} has been processed: {outcome}. Thank you for your help.") \
                .format(code=tip.code, outcome=outcome)
        if notice == "invalid":
            return _("Your tip {code} was reviewed; there are not enough grounds to act on it. "
                     "Thank you.").format(code=tip.code)
        if notice == "question":
            return _("❓ {police} have a question about your tip {code}:").format(
                police=police, code=tip.code) + "\n\n" + (payload.text or "") + "\n\n" + _(
                "To answer, reply to this message (swipe it or tap “Reply”), or send "
                "/answer {code} followed by your answer.").format(code=tip.code)
        raise ValueError(f"unknown notice {notice!r}")

    def receipt(self, code: str, language: str, *, duplicate: bool = False) -> str:
        return receipt_text(self._translator.for_language(language), code, duplicate=duplicate)

    # --- to the police (Vietnamese, through the catalogue like every text) -------------------

    def unreachable(self, tip: TipView) -> str:
        assert tip.id is not None
        _ = self._translator.for_language(POLICE_LANGUAGE)
        return _("⚠️ Cannot reach {alias} (tip {code}): the reporter blocked the bot or the "
                 "contact details are past their retention period.").format(
            alias=reporter_alias(tip.id, _), code=f"<code>{html.escape(tip.code)}</code>")

    def answer_in_group(self, tip: TipView, text: str | None) -> str:
        assert tip.id is not None
        _ = self._translator.for_language(POLICE_LANGUAGE)
        body = html.escape(text) if text else _("(photo)")
        return _("💬 <b>{alias} answered</b> (tip {code}):").format(
            alias=reporter_alias(tip.id, _), code=f"<code>{html.escape(tip.code)}</code>",
        ) + f"\n{body}"

    def delivery_failed(self, kind: str, tip_id: int | None, attempts: int, reason: str) -> str:
        """To the admins' ops chat: a message the outbox gave up on."""
        _ = self._translator.for_language(POLICE_LANGUAGE)
        if tip_id is None:  # a digest: it belongs to no one tip
            return _("⚠️ Could not send ({kind}) after {attempts} attempts: {reason}").format(
                kind=html.escape(kind), attempts=attempts, reason=html.escape(reason[:150]))
        return _("⚠️ Could not send ({kind}) for tip no. {tip} after {attempts} attempts: "
                 "{reason}").format(kind=html.escape(kind), tip=tip_id, attempts=attempts,
                                    reason=html.escape(reason[:150]))
