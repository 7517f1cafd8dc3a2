"""The one error path: log with context (no personal data), apologise, alert the ops chat."""

from __future__ import annotations

import logging

from telegram import Update
from telegram.error import NetworkError, RetryAfter, TimedOut

from bot.context import TiplineContext
from handlers.common import police_texts, resident_texts

log = logging.getLogger(__name__)


async def on_error(update: object, context: TiplineContext) -> None:
    """Log the failure; tell the person one polite sentence; alert ops (ids only)."""
    error = context.error
    if isinstance(error, (TimedOut, NetworkError, RetryAfter)) and not isinstance(
        update, Update
    ):
        log.warning("transient Telegram error: %s", type(error).__name__)
        return
    update_id = update.update_id if isinstance(update, Update) else None
    log.error(
        "handler failed",
        exc_info=error,
        extra={"update_id": update_id, "error_type": type(error).__name__},
    )
    if isinstance(update, Update) and update.effective_chat is not None:
        await _apologise(update, context)
    ops_chat = context.services.settings.ops_chat_id
    if ops_chat is not None:
        try:
            _ = police_texts(context)  # the ops chat reads the police's language
            await context.bot.send_message(
                ops_chat,
                _("⚠️ Error while handling update {update_id}: {error}").format(
                    update_id=update_id, error=type(error).__name__),
            )
        except Exception:  # alerting must never raise from the error handler
            log.warning("could not alert the ops chat", exc_info=True)


async def _apologise(update: Update, context: TiplineContext) -> None:
    try:
        _ = await resident_texts(update, context)
        assert update.effective_chat is not None
        await context.bot.send_message(
            update.effective_chat.id,
            _("Sorry, something went wrong on our side. Please try again in a moment. "
              "In an emergency, call 113."),
        )
    except Exception:
        log.warning("could not send the apology", exc_info=True)
