"""Typed settings for the tip-line, read from ``TIPLINE_*`` environment variables and ``.env``.

Loaded once in ``main()`` and passed down; nothing reads the environment at import time.
A wrong or missing setting raises :class:`SettingsError` carrying one sentence that the CLI
prints instead of a traceback.
"""

from __future__ import annotations

import re
from datetime import time
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

OFFICIAL_BOT_API_URL = "https://api.telegram.org"
_PLACEHOLDER_SECRETS = {"changeme", "change-me", "change_me", "secret", "password", "xxx", "todo"}
_WEBHOOK_SECRET_RE = re.compile(r"^[A-Za-z0-9_-]{1,256}$")
MIN_SECRET_KEY_LENGTH = 32


class SettingsError(Exception):
    """A configuration problem, explained in one sentence for the operator."""


class Settings(BaseSettings):
    """Everything the tip-line can be configured with. Field ``x`` is env ``TIPLINE_X``."""

    model_config = SettingsConfigDict(
        env_prefix="TIPLINE_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    telegram_token: SecretStr | None = Field(
        default=None, description="Bot token from @BotFather; absent = offline sandbox mode."
    )
    bot_api_url: str = Field(
        default=OFFICIAL_BOT_API_URL,
        description="Base URL of any Bot API-compatible server (files under <url>/file/bot...).",
    )
    proxy_url: SecretStr | None = Field(
        default=None,
        description="HTTP proxy for Bot API calls and file downloads (http://[user:pass@]host:port).",
    )
    database_url: str = Field(
        default="sqlite+aiosqlite:///data/tipline.db",
        description="SQLAlchemy async URL: sqlite+aiosqlite:///path or postgresql+psycopg://...",
    )
    secret_key: SecretStr | None = Field(
        default=None, description="Key for pseudonyms and encryption; required outside sandbox."
    )
    admin_ids: Annotated[list[int], NoDecode] = Field(
        default_factory=list, description="Comma-separated Telegram user ids of the admins."
    )
    bot_username: str | None = Field(
        default=None, description="The bot's @username for deep links and QR posters."
    )
    ops_chat_id: int | None = Field(
        default=None, description="Chat that receives error alerts and unrouted tips."
    )
    timezone: str = Field(default="Asia/Ho_Chi_Minh", description="Time zone shown to people.")
    retention_days: int = Field(
        default=90, ge=1, description="Days after a tip is closed before its reporter link goes."
    )
    data_dir: Path = Field(default=Path("data"), description="Where local files are kept.")
    ack_hours: float = Field(
        default=24.0, gt=0, le=480,
        description="Hours to take a tip up (a category may set its own in categories.json).",
    )
    urgent_ack_hours: float = Field(
        default=1.0, gt=0, le=480, description="Hours to take an urgent tip up.",
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["json", "text"] = "json"

    webhook_url: str | None = Field(
        default=None, description="Public HTTPS URL of the webhook route; absent = long polling."
    )
    webhook_secret: SecretStr | None = Field(
        default=None, description="Secret Telegram echoes in X-Telegram-Bot-Api-Secret-Token."
    )
    web_host: str = "127.0.0.1"
    web_port: int = Field(default=8080, ge=0, le=65535)

    membership_cache_seconds: float = Field(
        default=60.0, ge=0, description="How long a group-membership answer is trusted."
    )
    telegram_private_burst: int = Field(
        default=4, ge=1, description="Messages the bot may send to one person in a burst..."
    )
    telegram_private_window_seconds: float = Field(
        default=5.0, gt=0, description="...within this many seconds (Telegram: ~1 msg/s)."
    )

    # reminder and escalation rounds (bot/domain/reminders.py, docs/rounds.md)
    reminder_ack_points: Annotated[list[float], NoDecode] = Field(
        default_factory=lambda: [0.5, 0.9],
        description="Reminders at these shares of the acknowledgement window (0.5,0.9).",
    )
    reminder_settle_days: Annotated[list[int], NoDecode] = Field(
        default_factory=lambda: [5, 1],
        description="Reminders this many days before the settlement deadline (5,1).",
    )
    round_minutes: int = Field(
        default=15, ge=1, le=1440,
        description="Length of a round's slot: at most one reminder digest per group per slot.",
    )
    round_misfire_grace_minutes: int = Field(
        default=360, ge=1,
        description="A round missed while the bot was down runs if it is at most this old.",
    )
    round_tick_seconds: float = Field(
        default=60.0, gt=0, description="How often the scheduler looks for due rounds."
    )
    morning_summary_at: time | None = Field(
        default=time(7, 30),
        description="Local time of each police group's morning summary (empty: none).",
    )
    campaign_send_time: str = Field(
        default="08:00", description="Local time (HH:MM) built-in campaigns are sent at."
    )
    campaign_misfire_grace_minutes: int = Field(
        default=360, ge=1, le=1440,
        description="A campaign missed while the bot was down is still sent this long after "
                    "its time (never past its day); later, not at all.",
    )
    broadcast_rate: float = Field(
        default=30.0, gt=0, le=30, description="Announcements per second (Telegram: 30)."
    )
    broadcast_yield_rate: float = Field(
        default=20.0, gt=0, le=30,
        description="Announcements per second while tip cards and notices are being sent.",
    )

    sandbox_host: str = "127.0.0.1"
    sandbox_port: int = Field(default=8081, ge=0, le=65535)
    sandbox_rate_limits: bool = Field(
        default=True, description="Let the sandbox answer 429 like Telegram does."
    )

    @field_validator("morning_summary_at", mode="before")
    @classmethod
    def _empty_summary_time(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("admin_ids", mode="before")
    @classmethod
    def _split_admin_ids(cls, value: Any) -> Any:
        if isinstance(value, str):
            parts = [p.strip() for p in value.split(",") if p.strip()]
            if not all(re.fullmatch(r"-?\d+", p) for p in parts):
                raise ValueError("must be comma-separated numeric Telegram user ids")
            return [int(p) for p in parts]
        if isinstance(value, int):
            return [value]
        return value

    @field_validator("reminder_ack_points", mode="before")
    @classmethod
    def _split_ack_points(cls, value: Any) -> Any:
        if isinstance(value, str):
            try:
                value = [float(p) for p in value.split(",") if p.strip()]
            except ValueError:
                raise ValueError("must be comma-separated shares such as 0.5,0.9") from None
        if isinstance(value, list) and not all(
            isinstance(p, int | float) and 0 < p < 1 for p in value
        ):
            raise ValueError("must be shares between 0 and 1 (exclusive), such as 0.5,0.9")
        return value

    @field_validator("reminder_settle_days", mode="before")
    @classmethod
    def _split_settle_days(cls, value: Any) -> Any:
        if isinstance(value, str):
            parts = [p.strip() for p in value.split(",") if p.strip()]
            if not all(p.isdigit() for p in parts):
                raise ValueError("must be comma-separated whole days such as 5,1")
            value = [int(p) for p in parts]
        if isinstance(value, list) and not all(isinstance(d, int) and d >= 1 for d in value):
            raise ValueError("must be whole days of at least 1, such as 5,1")
        return value

    @field_validator("campaign_send_time")
    @classmethod
    def _hh_mm(cls, value: str) -> str:
        match = re.fullmatch(r"([01]?\d|2[0-3]):([0-5]\d)", value.strip())
        if match is None:
            raise ValueError("must be a time of day as HH:MM, e.g. 08:00")
        return f"{int(match.group(1)):02d}:{match.group(2)}"

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value

    @field_validator("bot_api_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not re.match(r"^https?://[^/\s]+", value):
            raise ValueError("must be an http:// or https:// URL")
        return value.rstrip("/")

    @field_validator("proxy_url")
    @classmethod
    def _proxy(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value().strip():
            return None
        if not re.match(r"^https?://[^/\s]+/?$", value.get_secret_value().strip()):
            raise ValueError(
                "must be an http:// or https:// proxy URL such as http://proxy.local:3128"
            )
        return SecretStr(value.get_secret_value().strip())

    @field_validator("database_url")
    @classmethod
    def _supported_database(cls, value: str) -> str:
        if value.startswith("postgresql://") or value.startswith("postgres://"):
            # one URL for everything: psycopg 3 is both sync (Alembic) and async (the app)
            value = "postgresql+psycopg://" + value.split("://", 1)[1]
        if not value.startswith(("sqlite+aiosqlite://", "postgresql+psycopg://")):
            raise ValueError(
                "must start with sqlite+aiosqlite:// or postgresql+psycopg:// "
                "(postgresql:// is accepted too)"
            )
        return value

    @model_validator(mode="after")
    def _urgent_within_normal(self) -> Settings:
        if self.urgent_ack_hours > self.ack_hours:
            raise ValueError(
                "TIPLINE_URGENT_ACK_HOURS must not be longer than TIPLINE_ACK_HOURS"
            )
        return self

    @model_validator(mode="after")
    def _secrets_outside_sandbox(self) -> Settings:
        if self.webhook_secret is not None and not _WEBHOOK_SECRET_RE.match(
            self.webhook_secret.get_secret_value()
        ):
            raise ValueError("TIPLINE_WEBHOOK_SECRET must be 1-256 characters of A-Z a-z 0-9 _ -")
        if self.secret_key is not None:  # the same rules in sandbox mode, when one is given
            _check_secret_key(self.secret_key.get_secret_value())
        if self.sandbox:
            return self
        if self.secret_key is None:
            raise ValueError(
                "TIPLINE_SECRET_KEY is required when TIPLINE_TELEGRAM_TOKEN is set "
                f"(at least {MIN_SECRET_KEY_LENGTH} random characters)"
            )
        if self.webhook_url and self.webhook_secret is None:
            raise ValueError("TIPLINE_WEBHOOK_SECRET is required when TIPLINE_WEBHOOK_URL is set")
        return self

    @property
    def sandbox(self) -> bool:
        """No token: run against the local Bot API sandbox."""
        return self.telegram_token is None

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


def _check_secret_key(key: str) -> None:
    if key.strip().lower() in _PLACEHOLDER_SECRETS:
        raise ValueError("TIPLINE_SECRET_KEY is a placeholder: generate a random one")
    if len(key) < MIN_SECRET_KEY_LENGTH:
        raise ValueError(
            f"TIPLINE_SECRET_KEY is too short ({len(key)} characters): it must be at least "
            f"{MIN_SECRET_KEY_LENGTH} random characters"
        )
    if len(set(key)) < 8:
        raise ValueError(
            "TIPLINE_SECRET_KEY looks like a placeholder (a few characters repeated): "
            "generate a random one"
        )


def load_settings(**overrides: Any) -> Settings:
    """Read the settings; raise :class:`SettingsError` with one readable sentence if wrong."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        raise SettingsError(_first_problem(exc)) from None


def _first_problem(exc: ValidationError) -> str:
    error = exc.errors()[0]
    message = str(error.get("msg", "invalid value")).removeprefix("Value error, ")
    location = [str(part) for part in error.get("loc", ()) if part != "__root__"]
    if not location:
        return f"Configuration error: {message}."
    env_name = "TIPLINE_" + location[0].upper()
    return f"Configuration error: {env_name} {message}."
