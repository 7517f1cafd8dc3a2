"""Operator commands: `python -m bot qr` and `python -m bot geo import`, as run by an
operator from a shell (subprocesses, real files, real SQLite)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]


def run_cli(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path), **env}
    return subprocess.run(
        [sys.executable, "-m", "bot", *args], cwd=tmp_path, env=environment,
        capture_output=True, text=True, timeout=120, check=False,
    )


def test_qr_writes_a_poster_whose_code_opens_the_commune_form(tmp_path: Path) -> None:
    result = run_cli(tmp_path, "qr", "2998", "--out", str(tmp_path / "posters"),
                     TIPLINE_BOT_USERNAME="hom_thu_an_ninh_bot")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0] == "https://t.me/hom_thu_an_ninh_bot?start=c2998"
    png = tmp_path / "posters" / "poster-2998.png"
    pdf = tmp_path / "posters" / "poster-2998.pdf"
    assert Image.open(png).size == (1240, 1754)
    assert pdf.read_bytes().startswith(b"%PDF")
    zxingcpp = pytest.importorskip("zxingcpp", reason="zxing-cpp decodes the QR code")
    decoded = [b.text for b in zxingcpp.read_barcodes(Image.open(png))]
    assert decoded == ["https://t.me/hom_thu_an_ninh_bot?start=c2998"]


def test_qr_in_sandbox_mode_uses_the_sandbox_bot(tmp_path: Path) -> None:
    result = run_cli(tmp_path, "qr", "2998")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("https://t.me/tipline_sandbox_bot?start=c2998")
    assert (tmp_path / "data" / "posters" / "poster-2998.png").exists()


def test_qr_unknown_commune_is_one_sentence(tmp_path: Path) -> None:
    result = run_cli(tmp_path, "qr", "99999999")
    assert result.returncode == 2
    assert result.stderr.strip() == "No commune has code 99999999."


def test_geo_import_stores_boundaries_and_refuses_bad_files(tmp_path: Path) -> None:
    square = [[104.0, 22.0], [104.2, 22.0], [104.2, 22.2], [104.0, 22.2], [104.0, 22.0]]
    good = tmp_path / "communes.geojson"
    good.write_text(json.dumps({"type": "FeatureCollection", "features": [{
        "type": "Feature", "properties": {"ma_xa": "02998"},
        "geometry": {"type": "Polygon", "coordinates": [square]},
    }]}))
    result = run_cli(tmp_path, "geo", "import", str(good))
    assert result.returncode == 0, result.stderr
    assert "Imported the boundaries of 1 communes" in result.stdout
    import sqlite3

    with sqlite3.connect(tmp_path / "data" / "tipline.db") as conn:
        assert conn.execute("SELECT commune_code FROM commune_areas").fetchall() == [(2998,)]
    bad = tmp_path / "bad.geojson"
    bad.write_text(json.dumps({"type": "FeatureCollection", "features": [{
        "type": "Feature", "properties": {"ma_xa": "99999999"},
        "geometry": {"type": "Polygon", "coordinates": [square]},
    }]}))
    result = run_cli(tmp_path, "geo", "import", str(bad))
    assert result.returncode == 2
    assert result.stderr.startswith("Nothing was imported: ")
    assert "Traceback" not in result.stderr


def test_sandbox_command_serves_the_demo_and_stops_on_sigterm(tmp_path: Path) -> None:
    """The README's first command: `python -m bot sandbox` boots offline, prints the URL,
    answers a resident, and shuts down cleanly on SIGTERM."""
    import signal
    import socket
    import time
    import urllib.request

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    environment = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path),
                   "TIPLINE_WEB_PORT": "0"}
    process = subprocess.Popen(
        [sys.executable, "-m", "bot", "sandbox", "--port", str(port)], cwd=tmp_path,
        env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"{base}/sandbox/api/state", timeout=2) as reply:
                    if reply.status == 200:
                        break
            except OSError:
                time.sleep(0.3)
        page = urllib.request.urlopen(f"{base}/", timeout=5).read().decode()
        assert "<html" in page.lower()
        request = urllib.request.Request(
            f"{base}/sandbox/api/messages/text", method="POST",
            data=json.dumps({"user_id": 7200000001, "text": "/start c2998"}).encode(),
            headers={"content-type": "application/json"},
        )
        urllib.request.urlopen(request, timeout=5).read()
        texts: list[str] = []
        for _ in range(100):
            with urllib.request.urlopen(
                f"{base}/sandbox/api/chats/7200000001/transcript", timeout=5
            ) as reply:
                body = json.loads(reply.read())
            messages = body["messages"] if isinstance(body, dict) else body
            texts = [m.get("text") or "" for m in messages]
            if len(texts) >= 2:
                break
            time.sleep(0.1)
        assert texts[1].startswith("Gửi cho: xã Phúc Khánh, tỉnh Lào Cai")
    finally:
        process.send_signal(signal.SIGTERM)
        stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 0, stderr[-2000:]
    assert f"open {base}/ in a browser" in stdout
    assert (tmp_path / "data" / "tipline.db").exists()
