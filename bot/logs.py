"""Structured logging without personal data.

Log records carry ids of tips, groups and updates, never a resident's id, name or text.
The JSON formatter emits only whitelisted ``extra`` fields, so a careless ``extra={...}``
cannot leak a new field into the logs. httpx is quietened: it logs request URLs, which
contain the bot token.

Free text is the other way in: an exception's message. SQLAlchemy's errors quote the
statement and its bound values (``[parameters: …]``: a stored update with the sender's id
and names, a draft's text); PostgreSQL's ``DETAIL:`` lines quote key values; aiohttp's
parser errors quote request bytes. The engines hide bound values (``hide_parameters`` in
storage/db.py), and every record is redacted when it is created (``protect_logs``, a log
record factory, so it holds for any handler: ours, pytest's, a library's): the SQL and
parameter blocks and ``DETAIL`` lines are cut from messages and tracebacks, and records of
aiohttp's server keep their traceback's frames and exception types but not its messages.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import traceback
from datetime import UTC, datetime
from types import TracebackType
from typing import Any

ALLOWED_EXTRA_FIELDS = frozenset(
    {
        "event", "update_id", "chat_id", "new_chat_id", "moved", "scope", "code", "tip_id",
        "tip_code", "outbox_id", "attempt", "retry_after", "error_type", "method", "count",
        "duration_ms", "campaign_id", "url", "mode", "status",
    }
)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key in ALLOWED_EXTRA_FIELDS:
            if key in record.__dict__:
                entry[key] = record.__dict__[key]
        if record.exc_info:
            entry["exception"] = redact(record.exc_text or self.formatException(record.exc_info))
        return json.dumps(entry, ensure_ascii=False, default=str)


_REDACTIONS = (
    # SQLAlchemy's StatementError: "[SQL: <statement, maybe over several lines>]" and
    # "[parameters: <repr of the bound values>]" (with hide_parameters: a fixed sentence)
    (re.compile(r"\[SQL: .*?\](?=\n|$)", re.DOTALL), "[SQL: withheld]"),
    (re.compile(r"^\[parameters: .*$", re.MULTILINE), "[parameters: withheld]"),
    # PostgreSQL's extra lines quote values: "DETAIL:  Key (code)=(7K3Q9MXD) already exists."
    (re.compile(r"^(DETAIL|HINT|CONTEXT|WHERE):.*$", re.MULTILINE), r"\1: withheld"),
)
_SUSPECT = ("[SQL: ", "[parameters: ", "DETAIL:", "HINT:", "CONTEXT:", "WHERE:")

# loggers of our web server: their exceptions may quote the raw request (parser errors)
MESSAGE_WITHHELD_LOGGERS = ("aiohttp.server", "aiohttp.web", "aiohttp.access")


def redact(text: str) -> str:
    """``text`` without SQL statements, bound values and PostgreSQL's value-quoting lines."""
    if not any(marker in text for marker in _SUSPECT):
        return text
    for pattern, replacement in _REDACTIONS:
        text = pattern.sub(replacement, text)
    return text


ExcInfo = tuple[type[BaseException], BaseException, TracebackType | None]


def _frames_and_types(exc_info: ExcInfo) -> str:
    """A traceback with each exception's type but not its message."""
    parts: list[str] = []
    error: BaseException | None = exc_info[1]
    seen: set[int] = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        kind = type(error)
        parts.insert(0, "".join([
            "Traceback (most recent call last):\n",
            *traceback.format_tb(error.__traceback__),
            f"{kind.__module__}.{kind.__qualname__}: (message withheld)",
        ]))
        error = error.__cause__ or error.__context__
    return "\n\nDuring handling of the above exception:\n\n".join(parts)


_FORMATTER = logging.Formatter()


def _redact_record(record: logging.LogRecord) -> None:
    if record.args or any(marker in str(record.msg) for marker in _SUSPECT):
        try:
            message = record.getMessage()
        except Exception:  # arguments that do not format: the handler reports it, as usual
            message = None
        if message is not None and (cleaned := redact(message)) != message:
            record.msg, record.args = cleaned, ()
    exc_info = record.exc_info
    if exc_info and exc_info[1] is not None:
        if record.name.startswith(MESSAGE_WITHHELD_LOGGERS):
            record.exc_text = _frames_and_types(exc_info)
        else:
            record.exc_text = redact(_FORMATTER.formatException(exc_info))


def protect_logs() -> None:
    """Redact every log record as it is made (idempotent; see the module's docstring)."""
    current = logging.getLogRecordFactory()
    if getattr(current, "tipline_redacting", False):
        return

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = current(*args, **kwargs)
        _redact_record(record)
        return record

    factory.tipline_redacting = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(factory)


# Libraries whose DEBUG records carry whole API payloads (user ids, names, message text) or
# URLs with the bot token, or every SQL statement with its bound values (aiosqlite): never
# below these levels, whatever TIPLINE_LOG_LEVEL says.
IDENTITY_BEARING_LOGGERS = {
    "telegram": logging.INFO, "httpx": logging.WARNING, "httpcore": logging.WARNING,
    "aiohttp.access": logging.WARNING, "apscheduler": logging.WARNING,
    "aiosqlite": logging.INFO,
}


def quiet_identity_bearing_loggers() -> None:
    """Clamp the identity-bearing loggers and redact every record (run at each start)."""
    protect_logs()
    for name, minimum in IDENTITY_BEARING_LOGGERS.items():
        logger = logging.getLogger(name)
        logger.setLevel(max(logger.getEffectiveLevel(), minimum))


def configure_logging(level: str = "INFO", fmt: str = "json") -> None:
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    quiet_identity_bearing_loggers()
