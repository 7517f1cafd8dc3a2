"""Retention: what is deleted, when. The link back to a reporter (pseudonym + sealed chat)
goes ``retention_days`` after the tip is closed; expired drafts and handled webhook payloads
go too. Tips and their audit trail stay (they hold no identity).

A ban stays (it works by pseudonym), but once the link of the tip it was made through is
purged, the ban keeps nothing else: its tip code would say "tip X came from pseudonym P", the
very link the purge removes, and its time and admin would pair it with the tip's
``reporter_banned`` audit event (which keeps who banned and when).

The policy is here; the deletes are storage/retention.py's (run by scheduler/jobs.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

HANDLED_UPDATES_KEPT = timedelta(days=2)  # long enough to dedupe Telegram's redeliveries
# a ban once its tip's reporter link is purged: no tip code, no time, no admin
UNLINKED_CODE = ""
UNLINKED_AT = datetime(2000, 1, 1, tzinfo=UTC)
UNLINKED_BY = 0

