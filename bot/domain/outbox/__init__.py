"""The persistent outbox: every message the bot owes a police group is a row first.

Layout: ``worker`` (lease, retry and back-off, per-tip order, in-flight rows, batched
bookkeeping), ``policy`` (lease, back-off, give-up and pacing: ``DeliveryPolicy``, ``Pacer``,
for a broadcast engine too), ``payloads`` (``OutboxKind`` and one typed payload per kind),
``deliveries/`` (one class per kind), ``store`` (what it needs from storage, implemented in
``storage/outbox_store.py``), ``transport`` (what it sends through, and its errors).

Digests (a round's reminders or escalations for one group, ``bot/domain/rounds.py``) are
rows without a tip; they are claimed after every other due row, so tip cards go first.

A worker sends due rows through a ``Transport`` (Telegram today), records progress of
multi-part sends (card, photos, location) step by step, and retries with back-off on
network errors, 5xx and 429 (honouring retry_after). Rows survive restarts; a tip card is
never given up: a gone group is routed around (commune -> province -> ops), and a tip with
nowhere to go waits, logged loudly, until a group is linked.

The resident's receipt is a row too ("receipt", committed with the tip, due ``RECEIPT_DELAY``
later in bot/domain/intake.py): the confirm handler sends the receipt itself at once and then
marks the row sent (``receipt_sent``); if that send fails it makes the row due now
(``receipt_missed``), and if the process dies first the row comes due by itself. A receipt
row stands outside its tip's line: it neither waits for the card nor holds anything back.

Leases: a row is claimed with a lease (``DeliveryPolicy``: shorter for urgent tips) that names
the worker run holding it (``lease_owner`` = "<host>#<run id>"). A worker that starts takes
back at once the rows leased by an earlier run on the same host (that run died: kill -9,
power loss), instead of waiting for their leases to run out; rows leased on another host
wait for their lease (that worker may still be sending).

Delivery is at least once. Each step is sent and then recorded; a crash between Telegram
accepting a message and the record repeats that one step after the restart, never skips it.
This cannot be closed from our side (the Bot API has no idempotency key). A claimed row whose
attempt never finished (its lease owner is still set), or whose send timed out, may already
have been posted: the card sent again is marked "🔁 Gửi lại" so the police see that an
identical card may sit above it. Photos, locations, notices and relays repeated this way are
not marked (a repeated photo album is a reply to the same card with the same captions); a
receipt may reach the resident twice (the same code).
"""

from bot.domain.outbox.payloads import (
    CardRefreshPayload,
    CardRetirePayload,
    DigestPayload,
    GroupRelayPayload,
    OutboxKind,
    Payload,
    PayloadError,
    ReceiptPayload,
    ReporterNoticePayload,
    TipCardPayload,
    parse_payload,
)
from bot.domain.outbox.policy import DeliveryPolicy, Pacer
from bot.domain.outbox.store import OutboxStore
from bot.domain.outbox.transport import (
    Buttons,
    ChatGone,
    ChatMoved,
    DeliveryError,
    RetryLater,
    Transport,
)
from bot.domain.outbox.worker import LEASE, URGENT_LEASE, OutboxStats, OutboxWorker

RECEIPT = OutboxKind.RECEIPT  # the kind of the receipt's safety-net row

__all__ = [
    "LEASE", "RECEIPT", "URGENT_LEASE", "Buttons", "CardRefreshPayload", "CardRetirePayload",
    "ChatGone", "ChatMoved", "DeliveryError", "DeliveryPolicy", "DigestPayload",
    "GroupRelayPayload",
    "OutboxKind", "OutboxStats", "OutboxStore", "OutboxWorker", "Pacer", "Payload",
    "PayloadError", "ReceiptPayload", "ReporterNoticePayload", "RetryLater",
    "TipCardPayload", "Transport", "parse_payload",
]
