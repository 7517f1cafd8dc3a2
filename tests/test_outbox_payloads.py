"""The outbox's typed payloads, its delivery policy and the one status-label table: plain
unit tests, no database."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from bot.domain.outbox import (
    CardRefreshPayload,
    CardRetirePayload,
    DeliveryPolicy,
    GroupRelayPayload,
    OutboxKind,
    Pacer,
    PayloadError,
    ReceiptPayload,
    ReporterNoticePayload,
    TipCardPayload,
    parse_payload,
)
from bot.domain.outbox.payloads import PAYLOADS
from bot.domain.status import (
    STATUS_LABELS,
    TRANSITIONS,
    TipStatus,
    police_label,
    resident_label,
)
from bot.i18n import Translator

EXAMPLES = [
    TipCardPayload(),
    TipCardPayload(route_province_only=True),
    TipCardPayload(route_commune=2998, chat_id=-100, scope="commune", card=(5, 6),
                   photos=True, location=True, gone=(-7, -3)),
    TipCardPayload(chat_id=-100, scope="province", resend=True),
    ReceiptPayload(),
    ReceiptPayload(duplicate=True),
    CardRefreshPayload(),
    CardRetirePayload(chat_id=-100, message_id=42, to=None),
    CardRetirePayload(chat_id=-100, message_id=42, to=2998),
    ReporterNoticePayload(notice="ack"),
    ReporterNoticePayload(notice="done", choice="agency"),
    ReporterNoticePayload(notice="question", text="Mấy giờ? \"quoted\" <b>",
                          unreachable="gone", warned=frozenset({3, 11})),
    GroupRelayPayload(text=None, photo_ids=(9, 10), text_sent=frozenset({1}),
                      photos_sent=frozenset({1, 2})),
]


@pytest.mark.parametrize("payload", EXAMPLES, ids=lambda p: type(p).__name__)
def test_every_payload_reads_back_as_it_was_written(payload: object) -> None:
    text = payload.to_json()  # type: ignore[attr-defined]
    assert parse_payload(str(payload.kind), text) == payload  # type: ignore[attr-defined]
    assert parse_payload(str(payload.kind), text).to_json() == text  # type: ignore[attr-defined]


def test_every_kind_has_a_payload() -> None:
    assert set(PAYLOADS) == set(OutboxKind)


@pytest.mark.parametrize(("kind", "stored"), [
    # rows as the untyped writers stored them (still in databases when this ships)
    ("tip_card", "{}"),
    ("tip_card", '{"route": {"province_only": true}}'),
    ("tip_card", '{"route": {"commune": 2998}, "chat_id": -1, "scope": "commune", '
                 '"card": [7], "photos": true, "gone": [-5]}'),
    ("receipt", "{}"),
    ("receipt", '{"duplicate": true}'),
    ("card_refresh", "{}"),
    ("card_retire", '{"chat_id": -1, "message_id": 2, "to": null}'),
    ("reporter_notice", '{"notice": "ack", "choice": null}'),
    ("reporter_notice", '{"notice": "invalid", "choice": "spam", "unreachable": "purged", '
                        '"warned:4": true}'),
    ("reporter_notice", '{"notice": "question", "text": "Ở đâu?"}'),
    ("group_relay", '{"text": "Ở chợ", "photo_ids": [1, 2], "text:4": true, "photos:4": true}'),
])
def test_rows_written_before_the_types_still_read_the_same(kind: str, stored: str) -> None:
    assert json.loads(parse_payload(kind, stored).to_json()) == json.loads(stored)


def test_the_tips_own_receipt_is_the_empty_payload_the_handler_marks() -> None:
    assert ReceiptPayload().to_json() == "{}"  # outbox_store marks receipts with payload "{}"
    assert TipCardPayload().first_attempt and not TipCardPayload(gone=(1,)).first_attempt


@pytest.mark.parametrize(("kind", "forged"), [
    ("tip_card", '{"chat_id": -1, "admin": true}'),  # unknown key
    ("tip_card", '{"chat_id": "-1"}'),  # wrong type
    ("tip_card", '{"card": [true]}'),  # a bool is not a message id
    ("tip_card", '{"route": {"commune": 1, "everywhere": true}}'),
    ("tip_card", "[]"),
    ("tip_card", "not json"),
    ("receipt", '{"duplicate": "yes"}'),
    ("card_retire", '{"chat_id": -1}'),  # which message?
    ("reporter_notice", '{"notice": "broadcast", "text": "hi"}'),  # no such notice
    ("reporter_notice", '{"notice": "ack", "warned:x": true}'),
    ("reporter_notice", '{"notice": "ack", "unreachable": "moon"}'),
    ("group_relay", '{"text": "a", "photo_ids": [1], "chat_id": -99}'),
    ("group_relay", '{"text": 5}'),
    ("campaign", "{}"),  # unknown kind
])
def test_a_forged_or_unknown_payload_is_refused(kind: str, forged: str) -> None:
    with pytest.raises(PayloadError):
        parse_payload(kind, forged)


def test_the_policy_backs_off_doubling_up_to_its_cap_and_honours_retry_after() -> None:
    policy = DeliveryPolicy(max_backoff_seconds=60.0, max_attempts=3)
    assert [policy.retry_delay(n) for n in (1, 2, 3, 5, 6, 10)] == [2, 4, 8, 32, 60, 60]
    assert policy.retry_delay(9, retry_after=7.5) == 7.5
    assert policy.retry_delay(9, retry_after=-1) == 0.0
    assert [policy.gives_up(n) for n in (2, 3, 4)] == [False, True, True]
    forever = policy.never_giving_up()
    assert not forever.gives_up(10_000) and forever.retry_delay(3) == 8
    assert policy.lease_for(urgent=True) == timedelta(seconds=30) < policy.lease_for(urgent=False)


def test_the_pacer_spaces_sends_overall_and_per_chat() -> None:
    pacer = Pacer(per_second=10, per_chat_seconds=3)
    assert pacer.delay(1, now=100.0) == 0.0
    assert pacer.delay(2, now=100.0) == pytest.approx(0.1)  # 10 a second overall
    assert pacer.delay(1, now=100.0) == pytest.approx(3.0)  # one per 3 s to a chat
    assert pacer.delay(3, now=200.0) == 0.0  # time passed: free again


def test_one_label_per_status_and_none_for_a_status_no_transition_produces() -> None:
    produced = {TipStatus.NEW} | {to for _from, to in TRANSITIONS.values() if to is not None}
    assert set(STATUS_LABELS) == set(TipStatus) == produced
    translator = Translator.load()
    police = translator.for_language("vi")
    assert police_label("transferred", police) == "transferred"  # no such status any more
    assert police_label("acknowledged", police) == "Đã tiếp nhận"
    for status in TipStatus:
        vi = resident_label(status, translator.for_language("vi"))
        en = resident_label(status, translator.for_language("en"))
        assert vi != en and vi and en, status


def test_the_outbox_modules_import_neither_sqlalchemy_nor_storage() -> None:
    import ast
    from pathlib import Path

    import bot.domain.outbox as package

    root = Path(package.__file__).parent
    for path in sorted(root.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [alias.name for alias in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            for name in names:
                assert name.split(".")[0] not in {"sqlalchemy", "sqlmodel", "storage",
                                                  "telegram"}, (path.name, name)
