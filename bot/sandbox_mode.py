"""Offline demo: the local Bot API sandbox, a seeded demo world, and the bot against it.

No token and no internet needed. The web chat page lets one act as a resident or as an
officer in the police group, and shows every message the bot sends.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import secrets
from dataclasses import dataclass
from pathlib import Path

from bot.app import BotEndpoint, TiplineRuntime
from bot.domain.linking import GroupLinking
from bot.heap import settle_after_start
from bot.sandbox import BotApiSandbox, RateLimits, SandboxChat, SandboxUser
from bot.settings import Settings, SettingsError

log = logging.getLogger(__name__)

DEMO_COMMUNE_CODE = 2998  # Xã Phúc Khánh, Lào Cai
DEMO_PROVINCE_CODE = 15  # Tỉnh Lào Cai
SANDBOX_BOT_USERNAME = "tipline_sandbox_bot"


@dataclass(frozen=True)
class DemoWorld:
    admin: SandboxUser
    officer: SandboxUser
    province_officer: SandboxUser
    residents: tuple[SandboxUser, SandboxUser]
    commune_group: SandboxChat
    province_group: SandboxChat
    ops_group: SandboxChat


def seed_demo(sandbox: BotApiSandbox) -> DemoWorld:
    """Two officers in a commune group, one in the province group, two residents.
    Ids are fixed so that the links stored in the SQLite file keep matching."""
    admin = sandbox.create_user(
        "An", last_name="Nguyễn Văn", username="canbo_an", user_id=7100000001
    )
    officer = sandbox.create_user(
        "Bình", last_name="Lê Thị", username="canbo_binh", user_id=7100000002
    )
    province_officer = sandbox.create_user(
        "Cường", last_name="Trần Quốc", username="canbo_cuong", user_id=7100000003
    )
    resident_vi = sandbox.create_user(
        "Dung", last_name="Phạm Thị", username="dung_pham", phone_number="+84912345678",
        user_id=7200000001,
    )
    resident_en = sandbox.create_user(
        "Emma", last_name="Hoang", username="emma_h", language_code="en", user_id=7200000002
    )
    commune_group = sandbox.create_group(
        "Công an xã Phúc Khánh – tin báo",
        members=[admin.id, officer.id],
        admins=[admin.id],
        chat_id=-5000002998,
    )
    province_group = sandbox.create_group(
        "Công an tỉnh Lào Cai – tổng hợp",
        members=[admin.id, province_officer.id],
        admins=[admin.id],
        chat_id=-5000000015,
    )
    ops_group = sandbox.create_group(
        "Quản trị hòm thư – cảnh báo", members=[admin.id], admins=[admin.id],
        chat_id=-5000000001,
    )
    return DemoWorld(
        admin, officer, province_officer, (resident_vi, resident_en), commune_group,
        province_group, ops_group,
    )


async def link_demo_groups(linking: GroupLinking, demo: DemoWorld) -> None:
    """As if the admin had typed /link in both demo groups."""
    await linking.link(
        chat_id=demo.commune_group.id, scope="commune", code=DEMO_COMMUNE_CODE,
        linked_by=demo.admin.id,
    )
    await linking.link(
        chat_id=demo.province_group.id, scope="province", code=DEMO_PROVINCE_CODE,
        linked_by=demo.admin.id,
    )


def sandbox_secret(settings: Settings) -> bytes:
    """The configured key, else a random one kept in the data directory (sandbox only)."""
    if settings.secret_key is not None:
        return settings.secret_key.get_secret_value().encode()
    path = Path(settings.data_dir) / "sandbox-secret.key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(48))
        path.chmod(0o600)
    return path.read_text().strip().encode()


async def run_sandbox(
    settings: Settings, stop: asyncio.Event, *, port: int | None, rate_limits: bool
) -> None:
    sandbox = BotApiSandbox(
        bot_username=SANDBOX_BOT_USERNAME,
        limits=RateLimits(enabled=rate_limits and settings.sandbox_rate_limits),
        time_zone=settings.timezone,
    )
    chosen = settings.sandbox_port if port is None else port
    try:
        await sandbox.start(settings.sandbox_host, chosen)
    except OSError as error:
        if error.errno != errno.EADDRINUSE:
            raise
        raise SettingsError(
            f"Port {chosen} on {settings.sandbox_host} is already in use: start the sandbox "
            "on another one with --port or TIPLINE_SANDBOX_PORT."
        ) from None
    demo = seed_demo(sandbox)
    settings = settings.model_copy(update={
        "admin_ids": [*settings.admin_ids, demo.admin.id],
        "ops_chat_id": settings.ops_chat_id or demo.ops_group.id,
    })
    endpoint = BotEndpoint(sandbox.token, sandbox.url)
    runtime = TiplineRuntime(settings, endpoint, sandbox_secret(settings))
    try:
        await runtime.start()
        assert runtime.services is not None
        await link_demo_groups(runtime.services.linking, demo)
        settle_after_start()
        print(
            f"\n  Tip-line sandbox is running: open {sandbox.url}/ in a browser.\n"
            f"  Act as a resident (Dung, Emma) or as officers in the demo police groups.\n"
            f"  Database: {settings.database_url}   Stop with Ctrl+C.\n",
            flush=True,
        )
        await stop.wait()
    finally:
        await runtime.stop()
        await sandbox.stop()
