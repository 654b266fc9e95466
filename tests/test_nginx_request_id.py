"""deploy/nginx.conf passes each request's id to the API, by the API's own rule for an incoming
``X-Request-ID`` (api/request_id.py), and writes it on its own access lines: nginx's line, the
API's lines and the answer's header name the same request alike."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from api import request_id
from tests.server_process import REPO_ROOT, ServerProcess, environment, free_port

NGINX_CONF = REPO_ROOT / "deploy" / "nginx.conf"
HEX_ID = re.compile(r"[0-9a-f]{32}")


def _conf() -> str:
    return NGINX_CONF.read_text(encoding="utf-8")


def test_the_proxy_passes_the_id_by_the_apps_rule() -> None:
    conf = _conf()
    assert "proxy_set_header X-Request-ID $materials_request_id;" in conf
    mapped = re.search(r"map \$http_x_request_id \$materials_request_id \{(.*?)\}\n", conf, re.S)
    assert mapped, "no map of the incoming X-Request-ID"
    entries = dict(
        line.strip().rstrip(";").rsplit(None, 1)
        for line in mapped.group(1).splitlines()
        if line.strip()
    )
    # Nothing sane incoming: nginx's own id; a sane one: kept, by the API's own pattern.
    assert entries["default"] == "$request_id"
    assert entries[f'"~^{request_id._SANE.pattern}$"'] == "$http_x_request_id"
    # nginx's own lines carry it, and its own JSON answers (413, 503) too.
    assert re.search(r"log_format materials [^;]*request_id=\$materials_request_id", conf, re.S)
    assert "access_log /var/log/nginx/access.log materials;" in conf
    assert conf.count("add_header X-Request-ID $materials_request_id always;") == 2


# ---------------------------------------------------------------- through a real nginx


def _runnable_conf(tmp_path: Path, *, port: int, upstream: str) -> Path:
    """deploy/nginx.conf as nginx 1.22 runs it outside Docker: `resolve` (1.27.3) taken out of
    the upstream, the test server as the upstream, a local port, files under ``tmp_path``."""
    conf = _conf()
    conf = conf.replace("server api:8000 resolve", f"server {upstream}")
    conf = conf.replace("listen 80 default_server;", f"listen 127.0.0.1:{port} default_server;")
    conf = conf.replace("/var/log/nginx/access.log", str(tmp_path / "access.log"))
    site = tmp_path / "site.conf"
    site.write_text(conf, encoding="utf-8")
    main = tmp_path / "nginx.conf"
    temp = tmp_path / "temp"
    temp.mkdir()
    main.write_text(
        f"""daemon off;
master_process off;
pid {tmp_path / "nginx.pid"};
error_log {tmp_path / "error.log"} warn;
events {{ worker_connections 64; }}
http {{
    client_body_temp_path {temp}/body;
    proxy_temp_path {temp}/proxy;
    fastcgi_temp_path {temp}/fastcgi;
    uwsgi_temp_path {temp}/uwsgi;
    scgi_temp_path {temp}/scgi;
    include {site};
}}
""",
        encoding="utf-8",
    )
    return main


@pytest.fixture
def proxied(tmp_path: Path) -> Iterator[tuple[str, ServerProcess, Path]]:
    nginx = shutil.which("nginx") or (
        "/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None
    )
    if nginx is None:
        pytest.skip("nginx is not installed")
    server = ServerProcess(
        tmp_path / "data", tmp_path / "serve.log", env=environment(log_format="json")
    )
    proxy: subprocess.Popen[bytes] | None = None
    try:
        server.wait_until_up()
        port = free_port()
        main = _runnable_conf(tmp_path, port=port, upstream=f"127.0.0.1:{server.port}")
        tested = subprocess.run(
            [nginx, "-t", "-c", str(main)], capture_output=True, text=True, check=False
        )
        assert tested.returncode == 0, tested.stderr
        proxy = subprocess.Popen([nginx, "-c", str(main)], stderr=subprocess.DEVNULL)
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 10
        while True:
            try:
                httpx.get(f"{base}/nginx-health", timeout=1)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "nginx did not start"
                time.sleep(0.05)
        yield base, server, tmp_path / "access.log"
    finally:
        if proxy is not None:
            proxy.terminate()
            proxy.wait(timeout=10)
        server.stop()


def _access_ids(server: ServerProcess) -> list[str]:
    """The request ids on the API's access lines."""
    ids = []
    for line in server.log().splitlines():
        if line.strip().startswith("{"):
            record = json.loads(line)
            if record.get("logger") == "uvicorn.access" and "/healthz" in record["message"]:
                ids.append(record.get("request_id"))
    return ids


def _nginx_ids(access_log: Path, status: int) -> list[str]:
    """The request ids on nginx's access lines of GET /healthz answered with ``status``."""
    pattern = rf'"GET /healthz [^"]*" {status} .*request_id=(\S+)'
    return re.findall(pattern, access_log.read_text(encoding="utf-8"))


def _soon(read: Callable[[], list[str]]) -> list[str]:
    """What ``read`` gives once it stops growing (log lines are written just after the answer)."""
    deadline = time.monotonic() + 5
    found = read()
    while time.monotonic() < deadline:
        time.sleep(0.1)
        again = read()
        if again == found and found:
            return found
        found = again
    return found


@pytest.mark.slow
def test_nginx_the_api_and_the_answer_name_the_request_alike(
    proxied: tuple[str, ServerProcess, Path],
) -> None:
    base, server, access_log = proxied
    before = len(_access_ids(server))
    new = httpx.get(f"{base}/healthz")
    kept = httpx.get(f"{base}/healthz", headers={"X-Request-ID": "front-proxy:42"})
    hostile = httpx.get(f"{base}/healthz", headers={"X-Request-ID": "x y\tforged"})
    assert [answer.status_code for answer in (new, kept, hostile)] == [200, 200, 200]

    ids = [answer.headers["X-Request-ID"] for answer in (new, kept, hostile)]
    assert HEX_ID.fullmatch(ids[0])  # nginx's $request_id
    assert ids[1] == "front-proxy:42"
    assert HEX_ID.fullmatch(ids[2])
    assert len(set(ids)) == 3

    # The API logged each request under the id nginx passed, and nginx's own access lines carry
    # the same ids (both write a request's line after its answer went out).
    assert _soon(lambda: _access_ids(server)[before:]) == ids
    assert _soon(lambda: _nginx_ids(access_log, 200)) == ids

    # No replica answers: nginx's own JSON 503 still names the request, as its line does.
    server.stop()
    down = httpx.get(f"{base}/healthz")
    assert down.status_code == 503
    assert down.json()["error"]["code"] == "backend_unavailable"
    assert HEX_ID.fullmatch(down.headers["X-Request-ID"])
    assert _soon(lambda: _nginx_ids(access_log, 503)) == [down.headers["X-Request-ID"]]
