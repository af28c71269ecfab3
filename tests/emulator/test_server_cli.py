"""The command line: ``python -m dicom_transfer_emulator`` / ``dicom-transfer-emulator``."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from http.client import HTTPConnection
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from support.emulator_cli import cli

CONSOLE_SCRIPT = Path(sys.executable).parent / "dicom-transfer-emulator"


def request(url: str, method: str, path: str, body: dict[str, Any] | None = None) -> int:
    parts = urlsplit(url)
    conn = HTTPConnection(parts.hostname or "", parts.port, timeout=10)
    try:
        data = json.dumps(body).encode() if body is not None else None
        conn.request(method, path, body=data)
        response = conn.getresponse()
        response.read()
        return response.status
    finally:
        conn.close()


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT])
def test_start_serve_and_stop_cleanly(tmp_path: Path, stop_signal: signal.Signals) -> None:
    with cli(tmp_path) as (proc, endpoints):
        assert set(endpoints) == {"healthcare", "storage"}
        for url in endpoints.values():
            assert url.startswith("http://127.0.0.1:") and not url.endswith(":0")
        assert proc.stdout is not None
        assert request(endpoints["healthcare"], "GET", "/_emulator/health") == 200
        assert request(endpoints["storage"], "GET", "/storage/v1/b?project=p-1") == 200
        proc.send_signal(stop_signal)
        assert proc.wait(timeout=30) == 0
        assert proc.stdout.read() == ""  # exactly one line was printed
    log = (tmp_path / "stderr.log").read_text()
    assert '"GET /storage/v1/b?project=p-1" 200' in log
    assert '"GET /_emulator/health" 200' in log


def test_state_survives_restart_with_data_dir(tmp_path: Path) -> None:
    data_dir = tmp_path / "state"
    with cli(tmp_path, "--data-dir", str(data_dir)) as (proc, endpoints):
        storage = endpoints["storage"]
        assert request(storage, "POST", "/storage/v1/b?project=p-1", {"name": "kept"}) == 200
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    with cli(tmp_path, "--data-dir", str(data_dir)) as (proc, endpoints):
        assert request(endpoints["storage"], "GET", "/storage/v1/b/kept") == 200
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    with cli(tmp_path) as (proc, endpoints):  # no --data-dir: memory only
        assert request(endpoints["storage"], "GET", "/storage/v1/b/kept") == 404
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0


def test_fault_flag_and_console_script(tmp_path: Path) -> None:
    assert CONSOLE_SCRIPT.exists()
    with cli(
        tmp_path, "--fault", "GET:^/storage/v1/b$=503x1", "--quiet", command=[str(CONSOLE_SCRIPT)]
    ) as (proc, endpoints):
        storage = endpoints["storage"]
        assert request(storage, "GET", "/storage/v1/b?project=p-1") == 503
        assert request(storage, "GET", "/storage/v1/b?project=p-1") == 200
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    assert '"GET' not in (tmp_path / "stderr.log").read_text()


def test_bad_fault_flag_is_a_usage_error() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "dicom_transfer_emulator", "--port", "0", "--fault", "oops"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "--fault" in result.stderr and "METHOD:PATH_REGEX" in result.stderr
    assert result.stdout == ""


def test_port_in_use_is_reported(tmp_path: Path) -> None:
    with cli(tmp_path) as (proc, endpoints):
        port = str(urlsplit(endpoints["healthcare"]).port)
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "dicom_transfer_emulator",
                "--port",
                port,
                "--storage-port",
                "0",
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 1
        assert "cannot listen" in result.stderr
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
