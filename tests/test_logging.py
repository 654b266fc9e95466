"""One logging configuration for every entry point: text or JSON lines on standard error, each
line of a request carrying the id its answer's X-Request-ID carries."""

from __future__ import annotations

import json
import logging
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient

from api.app import create_app
from api.cli import main
from services.backends import Backends
from services.config import Settings
from services.logging_setup import REQUEST_ID, configure_logging
from tests.conftest import make_settings
from tests.server_process import MATERIALS, REPO_ROOT, ServerProcess, environment

HEX_ID = re.compile(r"[0-9a-f]{32}")


@pytest.fixture
def restore_logging() -> Iterator[None]:
    """Tests configure the root logger as the commands do; put it back afterwards."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def json_lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def test_json_lines_carry_the_request_id_of_the_answer(
    settings: Settings,
    backends: Backends,
    restore_logging: None,
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging(settings.model_copy(update={"log_format": "json"}))
    app = create_app(settings, backends=backends)

    @app.get("/api/v1/test-log")
    def log_something() -> dict[str, str]:
        logging.getLogger("materials.test").info("处理中 working on it")
        return {}

    @app.get("/api/v1/test-crash")
    def crash() -> None:
        raise RuntimeError("the disk caught fire")

    with TestClient(app, raise_server_exceptions=False) as client:
        capsys.readouterr()
        answered = client.get("/api/v1/test-log")
        crashed = client.get("/api/v1/test-crash")
    lines = json_lines(capsys.readouterr().err)

    assert answered.status_code == 200
    working = next(line for line in lines if line["logger"] == "materials.test")
    assert working["message"] == "处理中 working on it"
    assert working["level"] == "INFO"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", working["time"])
    assert working["request_id"] == answered.headers["X-Request-ID"]

    # The 500 answer, made outside every other middleware, carries its id too, and so does the
    # line that logged the exception.
    assert crashed.status_code == 500
    assert crashed.json()["error"]["code"] == "internal_error"
    failure = next(line for line in lines if line["message"] == "unexpected error")
    assert failure["logger"] == "materials.api"
    assert failure["level"] == "ERROR"
    assert "the disk caught fire" in failure["exception"]
    assert failure["request_id"] == crashed.headers["X-Request-ID"]
    assert HEX_ID.fullmatch(crashed.headers["X-Request-ID"])
    assert crashed.headers["X-Request-ID"] != answered.headers["X-Request-ID"]


def test_text_lines_are_the_default(
    tmp_path: Path, restore_logging: None, capsys: pytest.CaptureFixture[str]
) -> None:
    configure_logging(make_settings(tmp_path / "data"))
    logging.getLogger("materials.test").info("第一行 first line")
    logging.getLogger("materials.test").debug("not at INFO")
    token = REQUEST_ID.set("req-7")
    try:
        logging.getLogger("materials.test").warning("in a request")
    finally:
        REQUEST_ID.reset(token)
    err = capsys.readouterr().err
    time = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"
    assert re.fullmatch(
        rf"{time} INFO materials\.test: 第一行 first line\n"
        rf"{time} WARNING materials\.test \[req-7\]: in a request\n",
        err,
    )


def test_a_sane_incoming_request_id_is_echoed(client: TestClient) -> None:
    for incoming in ("3f2c9a7e-1b2d-4c1e-9f3a-0d6b5e4c3a21", "lb.node-7:000123", "a" * 128):
        response = client.get("/healthz", headers={"X-Request-ID": incoming})
        assert response.headers["X-Request-ID"] == incoming


@pytest.mark.parametrize(
    "hostile",
    [
        "a" * 129,
        "id with spaces",
        '"; DROP TABLE audit_events; --',
        "../../etc/passwd",
        "<script>alert(1)</script>",
        "",
    ],
)
def test_a_hostile_request_id_is_replaced(client: TestClient, hostile: str) -> None:
    response = client.get("/healthz", headers={"X-Request-ID": hostile})
    assert HEX_ID.fullmatch(response.headers["X-Request-ID"])


def test_every_answer_carries_a_request_id(client: TestClient) -> None:
    answers = [
        client.get("/api/v1/no-such-route"),
        client.get("/api/v1/documents"),  # 401: not signed in
        client.post("/api/v1/auth/token", content=b"{", headers={"Content-Type": "text/json"}),
        client.get("/"),
    ]
    ids = [answer.headers["X-Request-ID"] for answer in answers]
    assert all(HEX_ID.fullmatch(request_id) for request_id in ids)
    assert len(set(ids)) == len(ids)


def test_a_bad_log_setting_stops_every_command_at_once(tmp_path: Path) -> None:
    for name, bad in (("LOG_LEVEL", "loud"), ("LOG_FORMAT", "xml"), ("METRICS_TOKEN", "short")):
        result = CliRunner().invoke(
            main, ["migrate", "--data-dir", str(tmp_path / "data")], env={f"MATERIALS_{name}": bad}
        )
        assert result.exit_code == 2, result.output
        error = json.loads(result.stdout)["error"]
        assert error["code"] == "invalid_setting"
        assert f"MATERIALS_{name}" in error["message"]
        assert not (tmp_path / "data").exists()


def test_the_worker_command_logs_its_info_lines(tmp_path: Path) -> None:
    env = environment(data_dir=str(tmp_path / "data"), log_format="json")
    worker = subprocess.Popen(
        [MATERIALS, "worker"],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: list[dict[str, Any]] = []
    try:
        assert worker.stderr is not None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = worker.stderr.readline()
            if not line:
                break
            lines.append(json.loads(line))
            if lines[-1]["message"].startswith("index worker"):
                break
    finally:
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(timeout=30)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait(timeout=10)
        if worker.stderr is not None:
            worker.stderr.close()
    started = [line for line in lines if line["message"].startswith("index worker")]
    assert started, lines
    assert started[0]["logger"] == "materials.indexer"
    assert started[0]["level"] == "INFO"
    assert "started" in started[0]["message"]


@pytest.mark.slow
def test_serve_writes_uvicorn_lines_through_the_same_format(tmp_path: Path) -> None:
    server = ServerProcess(
        tmp_path / "data", tmp_path / "serve.log", env=environment(log_format="json"), workers=2
    )
    try:
        server.wait_until_up()
        answer = httpx.get(f"{server.base_url}/healthz", headers={"X-Request-ID": "probe-42"})
    finally:
        server.stop()
    assert answer.headers["X-Request-ID"] == "probe-42"
    lines = json_lines(server.log())  # every line is JSON: uvicorn's own too
    loggers = {line["logger"] for line in lines}
    assert not [line for line in lines if "color_message" in line]
    assert {"uvicorn.error", "uvicorn.access"} <= loggers
    access = [line for line in lines if line.get("request_id") == "probe-42"]
    assert [line["logger"] for line in access] == ["uvicorn.access"]
    assert "/healthz" in access[0]["message"]
