"""Start-up problems an operator can fix end in one sentence (no traceback, no "Unclosed
client session" noise): a wrong Bot API URL or token, a port already in use. Run as an
operator would: `python -m bot ...` in a subprocess."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "123456:secret-token-part"
KEY = "k3Jx9-QpL2mZ7vB4nR8tW1yE6uA0sD5fG"


def run_bot(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path),
                   "PYTHONPATH": str(ROOT),  # this checkout's code, whatever is installed
                   "TIPLINE_LOG_FORMAT": "text", **env}
    return subprocess.run(
        [sys.executable, "-m", "bot", *args], cwd=tmp_path, env=environment,
        capture_output=True, text=True, timeout=120, check=False,
    )


def last_line_and_noise(result: subprocess.CompletedProcess[str]) -> tuple[str, str]:
    lines = result.stderr.strip().splitlines()
    return lines[-1], result.stderr


@pytest.fixture
def answering(request: pytest.FixtureRequest) -> Iterator[str]:
    """A local HTTP server giving every request the (status, content type, body) asked."""
    status, content_type, body = request.param

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize(
    ("answering", "sentence"),
    [
        (
            (404, "text/html", b"<html><body>404 Not Found</body></html>"),
            "Start-up failed: the server at {url} answered getMe with HTTP 404 and no Bot API "
            "reply: check TIPLINE_BOT_API_URL.",
        ),
        (
            (401, "application/json",
             json.dumps({"ok": False, "error_code": 401, "description": "Unauthorized"}).encode()),
            "Start-up failed: the Bot API at {url} refused the token (HTTP 401 Unauthorized): "
            "check TIPLINE_TELEGRAM_TOKEN.",
        ),
    ],
    indirect=["answering"],
)
def test_a_wrong_bot_api_url_or_token_is_one_sentence(
    tmp_path: Path, answering: str, sentence: str
) -> None:
    result = run_bot(tmp_path, "run", TIPLINE_TELEGRAM_TOKEN=TOKEN, TIPLINE_SECRET_KEY=KEY,
                     TIPLINE_BOT_API_URL=answering, TIPLINE_WEB_PORT="0")
    last, stderr = last_line_and_noise(result)
    assert result.returncode == 2
    assert last == sentence.format(url=answering)
    assert "Traceback" not in stderr and "Unclosed" not in stderr
    assert "secret-token-part" not in stderr + result.stdout


def test_an_unreachable_bot_api_is_one_sentence(tmp_path: Path) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{probe.getsockname()[1]}"
    result = run_bot(tmp_path, "run", TIPLINE_TELEGRAM_TOKEN=TOKEN, TIPLINE_SECRET_KEY=KEY,
                     TIPLINE_BOT_API_URL=url, TIPLINE_WEB_PORT="0")
    last, stderr = last_line_and_noise(result)
    assert result.returncode == 2
    assert last.startswith(f"Start-up failed: the Bot API at {url} could not be reached (")
    assert last.endswith("): check TIPLINE_BOT_API_URL and the network.")
    assert "Traceback" not in stderr and "Unclosed" not in stderr


@pytest.fixture
def taken_port() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def test_sandbox_port_taken_is_one_sentence(tmp_path: Path, taken_port: int) -> None:
    result = run_bot(tmp_path, "sandbox", "--port", str(taken_port))
    last, stderr = last_line_and_noise(result)
    assert result.returncode == 2
    assert last == (
        f"Port {taken_port} on 127.0.0.1 is already in use: start the sandbox on another one "
        "with --port or TIPLINE_SANDBOX_PORT."
    )
    assert "Traceback" not in stderr and "Unclosed" not in stderr


def test_web_port_taken_is_one_sentence(tmp_path: Path, taken_port: int) -> None:
    result = run_bot(tmp_path, "sandbox", "--port", "0", TIPLINE_WEB_PORT=str(taken_port))
    last, stderr = last_line_and_noise(result)
    assert result.returncode == 2
    assert last == (
        f"Port {taken_port} on 127.0.0.1 is already in use: set TIPLINE_WEB_PORT to a free "
        "port (0 picks any)."
    )
    assert "Traceback" not in stderr and "Unclosed" not in stderr
