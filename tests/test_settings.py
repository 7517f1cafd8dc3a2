"""Settings: a wrong or missing setting stops start-up with one clear sentence."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from bot.settings import SettingsError, load_settings

ROOT = Path(__file__).resolve().parents[1]
GOOD_KEY = "k3Jx9-QpL2mZ7vB4nR8tW1yE6uA0sD5fG"


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.chdir(tmp_path)  # no stray .env
    for name in list(__import__("os").environ):
        if name.startswith("TIPLINE_"):
            monkeypatch.delenv(name)


def test_defaults_mean_sandbox_mode_with_sqlite() -> None:
    settings = load_settings()
    assert settings.sandbox
    assert settings.database_url.startswith("sqlite+aiosqlite:///")
    assert settings.timezone == "Asia/Ho_Chi_Minh"
    assert settings.admin_ids == []


def test_env_values_are_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TIPLINE_TELEGRAM_TOKEN", "123:abc")
    monkeypatch.setenv("TIPLINE_SECRET_KEY", GOOD_KEY)
    monkeypatch.setenv("TIPLINE_ADMIN_IDS", "111, 222,333")
    monkeypatch.setenv("TIPLINE_DATABASE_URL", "postgresql://postgres@127.0.0.1/test")
    monkeypatch.setenv("TIPLINE_BOT_API_URL", "http://127.0.0.1:9999/")
    settings = load_settings()
    assert not settings.sandbox
    assert settings.admin_ids == [111, 222, 333]
    assert settings.database_url == "postgresql+psycopg://postgres@127.0.0.1/test"
    assert settings.bot_api_url == "http://127.0.0.1:9999"


def test_dotenv_file_is_read(tmp_path) -> None:
    (tmp_path / ".env").write_text("TIPLINE_TIMEZONE=UTC\nTIPLINE_ADMIN_IDS=5\n")
    settings = load_settings()
    assert settings.timezone == "UTC"
    assert settings.admin_ids == [5]


@pytest.mark.parametrize(
    ("env", "sentence"),
    [
        ({"TIPLINE_TELEGRAM_TOKEN": "1:a"}, "TIPLINE_SECRET_KEY is required"),
        ({"TIPLINE_TELEGRAM_TOKEN": "1:a", "TIPLINE_SECRET_KEY": "changeme"}, "placeholder"),
        ({"TIPLINE_TELEGRAM_TOKEN": "1:a", "TIPLINE_SECRET_KEY": "aB3$" * 8}, "placeholder"),
        ({"TIPLINE_TELEGRAM_TOKEN": "1:a", "TIPLINE_SECRET_KEY": "abcdefghij"}, "at least 32"),
        # a short key is called short, not a placeholder (issue 9.5.6)
        (
            {"TIPLINE_TELEGRAM_TOKEN": "1:a", "TIPLINE_SECRET_KEY": "short"},
            "TIPLINE_SECRET_KEY is too short (5 characters): it must be at least 32",
        ),
        # the same rules in sandbox mode (no token) when a key is given
        ({"TIPLINE_SECRET_KEY": "short"}, "TIPLINE_SECRET_KEY is too short (5 characters)"),
        ({"TIPLINE_SECRET_KEY": "changeme"}, "placeholder"),
        ({"TIPLINE_ADMIN_IDS": "12,bob"}, "TIPLINE_ADMIN_IDS"),
        ({"TIPLINE_TIMEZONE": "Mars/Olympus"}, "unknown time zone"),
        ({"TIPLINE_DATABASE_URL": "mysql://x"}, "(postgresql:// is accepted too)"),
        ({"TIPLINE_BOT_API_URL": "ftp://x"}, "TIPLINE_BOT_API_URL"),
        ({"TIPLINE_PROXY_URL": "socks5://127.0.0.1:1080"}, "TIPLINE_PROXY_URL must be an http"),
        ({"TIPLINE_WEB_PORT": "99999"}, "TIPLINE_WEB_PORT"),
        ({"TIPLINE_WEBHOOK_SECRET": "has spaces!"}, "TIPLINE_WEBHOOK_SECRET"),
        (
            {"TIPLINE_TELEGRAM_TOKEN": "1:a", "TIPLINE_SECRET_KEY": GOOD_KEY,
             "TIPLINE_WEBHOOK_URL": "https://example.org/hook"},
            "TIPLINE_WEBHOOK_SECRET is required",
        ),
    ],
)
def test_bad_settings_give_one_sentence(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], sentence: str
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError) as caught:
        load_settings()
    message = str(caught.value)
    assert sentence in message
    assert message.startswith("Configuration error:")
    assert "\n" not in message
    if "too short" in sentence:
        assert "placeholder" not in message


def test_cli_check_config_refuses_a_short_key_in_sandbox_mode(tmp_path) -> None:
    """Sandbox mode applies the key rules too: a 5-character key is refused, not used."""
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "TIPLINE_SECRET_KEY": "short",
           "PYTHONPATH": str(ROOT)}  # this checkout's code, whatever is installed
    result = subprocess.run(
        [sys.executable, "-m", "bot", "check-config"],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False,
    )
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "Configuration error: TIPLINE_SECRET_KEY is too short (5 characters): it must be at "
        "least 32 random characters."
    )
    assert result.stdout == ""


def test_cli_prints_the_sentence_not_a_traceback(tmp_path) -> None:
    env = {"PATH": "/usr/bin:/bin", "TIPLINE_TELEGRAM_TOKEN": "1:a", "HOME": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, "-m", "bot", "check-config"],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False,
    )
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "Configuration error: TIPLINE_SECRET_KEY is required when TIPLINE_TELEGRAM_TOKEN is set "
        "(at least 32 random characters)."
    )
    assert "Traceback" not in result.stderr


def test_cli_check_config_ok_in_sandbox_mode(tmp_path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "bot", "check-config"],
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}, cwd=tmp_path,
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "sandbox mode" in result.stdout


def test_acknowledgement_windows(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = load_settings()
    assert (settings.ack_hours, settings.urgent_ack_hours) == (24.0, 1.0)
    monkeypatch.setenv("TIPLINE_ACK_HOURS", "12")
    monkeypatch.setenv("TIPLINE_URGENT_ACK_HOURS", "0.5")
    assert (load_settings().ack_hours, load_settings().urgent_ack_hours) == (12.0, 0.5)
    monkeypatch.setenv("TIPLINE_URGENT_ACK_HOURS", "13")
    with pytest.raises(SettingsError, match="TIPLINE_URGENT_ACK_HOURS must not be longer"):
        load_settings()
    monkeypatch.setenv("TIPLINE_ACK_HOURS", "0")
    with pytest.raises(SettingsError, match="TIPLINE_ACK_HOURS"):
        load_settings()
