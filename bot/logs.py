"""Structured logging without personal data.

Log records carry ids of tips, groups and updates, never a resident's id, name or text.
The JSON formatter emits only whitelisted ``extra`` fields, so a careless ``extra={...}``
cannot leak a new field into the logs. httpx is quietened: it logs request URLs, which
contain the bot token.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime

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
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


# Libraries whose DEBUG records carry whole API payloads (user ids, names, message text) or
# URLs with the bot token: never below these levels, whatever TIPLINE_LOG_LEVEL says.
IDENTITY_BEARING_LOGGERS = {
    "telegram": logging.INFO, "httpx": logging.WARNING, "httpcore": logging.WARNING,
    "aiohttp.access": logging.WARNING, "apscheduler": logging.WARNING,
}


def quiet_identity_bearing_loggers() -> None:
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
