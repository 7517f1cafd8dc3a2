"""Custom campaigns: from the admins' chat (/campaign and its buttons, admins only) and from
the CLI (a subprocess on the bot's database, picked up by the running bot's tick); pause and
resume mid-broadcast without duplicates. SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from bot.domain.broadcast.campaigns import control
from bot.domain.sealing import ReplyAddress
from bot.sandbox import BotApiSandbox, SandboxUser
from storage.tables import campaign_deliveries
from tests.conftest import TEST_SECRET_KEY, MovableClock, World, running_world

ROOT = Path(__file__).resolve().parents[1]


async def subscribers(world: World, count: int, first_id: int = 7400000000,
                      scope: str = "all", code: int | None = None) -> list[SandboxUser]:
    services, users = world.services, []
    for number in range(count):
        user = world.sandbox.create_user(f"S{number}", user_id=first_id + number)
        world.sandbox.world.private_state(user)
        await services.subscriptions.subscribe(
            services.pseudonyms.resident("tg", user.id), ReplyAddress("tg", str(user.id)),
            scope, code)  # type: ignore[arg-type]
        users.append(user)
    return users


def texts(world: World, user: SandboxUser) -> list[str]:
    return [m.get("text") or m.get("caption") or "" for m in world.sandbox.bot_messages(user.id)]


def buttons(message: dict[str, Any]) -> list[str]:
    return [b["callback_data"] for row in message.get("reply_markup", {}).get(
        "inline_keyboard", []) for b in row]


async def test_an_admin_drafts_previews_and_confirms_an_announcement(
    sandbox: BotApiSandbox, database_url: str, tmp_path: Path,
) -> None:
    async with running_world(sandbox, database_url, tmp_path) as world:
        [here] = await subscribers(world, 1, scope="commune", code=2998)
        [away] = await subscribers(world, 1, first_id=7400000100, scope="commune", code=4465)
        ops, admin, officer = world.demo.ops_group.id, world.demo.admin, world.demo.officer
        sandbox.add_member(ops, officer.id)
        [refused] = await world.exchange(officer, "/campaign Họp dân", chat_id=ops)
        assert "chỉ quản trị viên" in refused["text"]
        [draft] = await world.exchange(
            admin, "/campaign commune:2998 Họp dân tối nay lúc 19:00 tại nhà văn hóa.",
            chat_id=ops)
        assert "Bản nháp thông báo" in draft["text"] and "Xã Phúc Khánh" in draft["text"]
        campaign_id = int(buttons(draft)[0].rsplit(":", 1)[1])
        assert buttons(draft) == [f"cp:preview:{campaign_id}", f"cp:confirm:{campaign_id}",
                                  f"cp:cancel:{campaign_id}"]
        answer = await world.press(officer, draft, f"cp:confirm:{campaign_id}")
        assert "chỉ quản trị viên" in answer["text"]  # not an admin: nothing changes
        before = len(sandbox.bot_messages(ops))
        await world.press(admin, draft, f"cp:preview:{campaign_id}")
        [preview] = (await sandbox.wait_for_bot_messages(ops, before + 1))[before:]
        assert preview["text"] == "Họp dân tối nay lúc 19:00 tại nhà văn hóa."
        assert texts(world, here) == []  # a draft goes nowhere
        await world.press(admin, draft, f"cp:confirm:{campaign_id}")
        await world.services.campaigns.wait_idle()
        assert texts(world, here) == ["Họp dân tối nay lúc 19:00 tại nhà văn hóa."]
        assert texts(world, away) == []  # another commune
        progress = [m for m in sandbox.bot_messages(ops) if "📢" in m.get("text", "")
                    and "Đã gửi" in m.get("text", "")]
        assert len(progress) == 1  # one message, edited in place
        assert "đã xong" in progress[0]["text"] and "100%" in progress[0]["text"]
        assert "Đã gửi 1 · lỗi 0 · không liên lạc được 0 · còn lại 0" in progress[0]["text"]


async def test_pause_and_resume_mid_broadcast_sends_each_one_once(
    sandbox: BotApiSandbox, database_url: str, tmp_path: Path,
) -> None:
    async with running_world(sandbox, database_url, tmp_path, broadcast_rate=10.0) as world:
        users = await subscribers(world, 40)
        store, now = world.services.campaigns.store, world.services.clock.now()
        campaign_id = await store.add_custom(
            title="T", text="Thông báo thử.", photo=None, scope="all", scope_code=None,
            send_at=now, status="scheduled", created_by=None, now=now)
        [run_id] = await world.services.campaigns.tick()
        await asyncio.sleep(1.0)
        assert await control(store, campaign_id, "pause")
        await world.services.campaigns.wait_idle()
        run = await store.run(run_id)
        assert run is not None and run.status == "paused"
        sent_then = sum(len(texts(world, u)) for u in users)
        assert 0 < sent_then < 40
        assert await control(store, campaign_id, "resume")
        await world.services.campaigns.tick()
        await world.services.campaigns.wait_idle()
        assert [len(texts(world, u)) for u in users] == [1] * 40
        async with world.services.db.engine.connect() as conn:
            statuses = set((await conn.execute(sa.select(campaign_deliveries.c.status).where(
                campaign_deliveries.c.run_id == run_id))).scalars())
        assert statuses == {"sent"}


def run_cli(tmp_path: Path, database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    environment = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path),
                   "PYTHONPATH": str(ROOT), "TIPLINE_DATABASE_URL": database_url,
                   "TIPLINE_SECRET_KEY": TEST_SECRET_KEY, "TIPLINE_LOG_LEVEL": "WARNING"}
    return subprocess.run(
        [sys.executable, "-m", "bot", "campaign", *args], cwd=tmp_path, env=environment,
        capture_output=True, text=True, timeout=120, check=False,
    )


async def test_the_cli_adds_lists_follows_pauses_resumes_and_cancels(
    sandbox: BotApiSandbox, database_url: str, tmp_path: Path,
) -> None:
    clock = MovableClock()  # the CLI takes "now" from the system clock
    async with running_world(sandbox, database_url, tmp_path, clock=clock) as world:
        [user] = await subscribers(world, 1)
        text_file = tmp_path / "thong-bao.txt"
        text_file.write_text("Cảnh báo lừa đảo qua điện thoại: không chuyển tiền cho người lạ.",
                             encoding="utf-8")
        photo = tmp_path / "anh.png"
        from PIL import Image

        Image.new("RGB", (64, 48), (200, 30, 30)).save(photo)
        cli = run_cli
        added = await asyncio.to_thread(cli, tmp_path, database_url, "add", "--text-file",
                                        str(text_file), "--photo", str(photo), "--at", "now")
        assert added.returncode == 0, added.stderr
        campaign_id = int(added.stdout.strip())
        later = await asyncio.to_thread(
            cli, tmp_path, database_url, "add", "--text-file", str(text_file), "--scope",
            "province:15", "--at", "2030-01-01 08:00")
        assert later.returncode == 0, later.stderr
        later_id = int(later.stdout.strip())
        bad = await asyncio.to_thread(cli, tmp_path, database_url, "add", "--text-file",
                                      str(text_file), "--scope", "commune:99999999")
        assert bad.returncode == 2 and "No commune has code" in bad.stderr

        listed = await asyncio.to_thread(cli, tmp_path, database_url, "list")
        assert listed.returncode == 0, listed.stderr
        assert f"{campaign_id:>4}  custom   scheduled" in listed.stdout
        assert "Cảnh báo lừa đảo" in listed.stdout and "province:15" in listed.stdout

        clock.advance(minutes=1)  # the running bot's next tick picks it up
        await world.services.campaigns.tick()
        await world.services.campaigns.wait_idle()
        [got] = sandbox.bot_messages(user.id)
        assert got["caption"].startswith("Cảnh báo lừa đảo") and "photo" in got
        status = await asyncio.to_thread(cli, tmp_path, database_url, "status",
                                         str(campaign_id), "--follow")
        assert status.returncode == 0, status.stderr
        assert "100%" in status.stdout and "sent 1" in status.stdout
        assert "remaining 0" in status.stdout and "[done]" in status.stdout

        paused = await asyncio.to_thread(cli, tmp_path, database_url, "pause", str(later_id))
        assert paused.stdout.strip() == f"Campaign {later_id} paused."
        resumed = await asyncio.to_thread(cli, tmp_path, database_url, "resume", str(later_id))
        assert resumed.stdout.strip() == f"Campaign {later_id} resumed."
        cancelled = await asyncio.to_thread(cli, tmp_path, database_url, "cancel",
                                            str(later_id))
        assert cancelled.stdout.strip() == f"Campaign {later_id} cancelled."
        again = await asyncio.to_thread(cli, tmp_path, database_url, "resume", str(later_id))
        assert "was not changed" in again.stdout
        campaign = await world.services.campaigns.store.campaign(later_id)
        assert campaign is not None and campaign.status == "cancelled"
