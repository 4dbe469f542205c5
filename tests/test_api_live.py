"""The API on a real uvicorn server on loopback, spoken to with httpx and fuzzed with schemathesis;
and `statecore serve` as an operator starts it."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
import schemathesis
import uvicorn
from api_support import ADMIN, POLICY, SERVICES, Served, fleet, free_port, serve, stop, wait_until_serving
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error, response_schema_conformance, status_code_conformance
from support import Harness, seconds_until

from statecore.api import StoreSource, create_app
from statecore.cli import main
from statecore.store import open_store

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def store_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite store an engine has written, as `statecore run` leaves it for `statecore serve`."""
    path = tmp_path_factory.mktemp("live") / "state.sqlite"
    store = open_store(str(path))
    fleet(Harness(store=store))
    store.close()
    return path


@pytest.fixture(scope="module")
def live_url(store_file: Path) -> Iterator[str]:
    """uvicorn on 127.0.0.1, on a port the kernel picks, in a thread; stopped at the end."""
    app = create_app(StoreSource(open_store(str(store_file)), service_down_time=3600), POLICY)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not (server.started and server.servers):
        assert time.monotonic() < deadline and thread.is_alive(), "uvicorn did not start"
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)


def test_the_service_list_over_real_http(live_url):
    headers = {**ADMIN, "OpenStack-API-Version": "volume 3.49"}
    response = httpx.get(f"{live_url}{SERVICES}", headers=headers, params={"with_lifecycle": "true"})
    assert response.status_code == 200
    assert response.headers["openstack-api-version"] == "volume 3.49"
    assert response.headers["content-type"] == "application/json"
    rows = {row["host"]: row for row in response.json()["services"]}
    assert "backend_state" in rows["node1@lvm"] and "backend_state" not in rows["node1"]
    assert rows["node2@array"]["lifecycle"] == "failed_permanent"


def test_disable_and_enable_over_real_http_write_the_store(live_url, store_file):
    with httpx.Client(base_url=live_url, headers=ADMIN) as http:
        assert http.put(f"{SERVICES}/disable-log-reason", json={"host": "node3", "disabled_reason": "move"}).is_success
        assert open_store(str(store_file)).statuses(["backup/node3"]) == {"backup/node3": (True, "move")}
        assert http.put(f"{SERVICES}/enable", json={"host": "node3"}).json()["status"] == "enabled"


def test_the_served_openapi_document_is_the_committed_one(live_url):
    committed = json.loads((ROOT / "docs/openapi.json").read_text(encoding="utf-8"))
    assert httpx.get(f"{live_url}/openapi.json").json() == committed


@pytest.fixture(scope="module")
def live_schema(live_url):
    return schemathesis.openapi.from_url(f"{live_url}/openapi.json")


schema = schemathesis.pytest.from_fixture("live_schema")


@schema.parametrize()
@settings(max_examples=10, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_generated_request_makes_the_live_server_fail(case, live_url):
    """Bounded: a few examples an operation, as admin so requests get past the policy; no 5xx, and
    every answer is one the document declares, in the shape it declares."""
    checks = [not_a_server_error, response_schema_conformance, status_code_conformance]
    case.call_and_validate(base_url=live_url, headers=ADMIN, checks=checks, timeout=5)


@contextmanager
def served_with_token_file(store_file: Path, tmp_path: Path) -> Iterator[tuple[Served, int]]:
    """``statecore serve`` on ``store_file``, its admin token ``file-token`` read from a file; stopped after."""
    token_file = tmp_path / "token"
    token_file.write_text("file-token\n")
    port = free_port()
    served = serve(tmp_path / "serve.log", "--db", str(store_file), "--port", str(port),
                   "--admin-token-file", str(token_file))  # fmt: skip
    try:
        wait_until_serving(served, port)
        yield served, port
    finally:
        stop(served)


def test_statecore_serve_answers_with_the_admin_token_from_a_file(store_file, tmp_path):
    with served_with_token_file(store_file, tmp_path) as (_, port):
        response = httpx.get(f"http://127.0.0.1:{port}{SERVICES}", headers={"X-Auth-Token": "file-token"})
        assert response.status_code == 200 and len(response.json()["services"]) == 4
        assert httpx.get(f"http://127.0.0.1:{port}{SERVICES}", headers=ADMIN).status_code == 401
        head, options = (
            httpx.request(method, f"http://127.0.0.1:{port}/", timeout=5) for method in ("HEAD", "OPTIONS")
        )
        assert (head.status_code, head.content) == (300, b"")
        assert options.status_code == 300 and options.json()["versions"][0]["id"] == "v3.0"
        reset = httpx.put(f"http://127.0.0.1:{port}{SERVICES}/reset", json={"host": "node2@array"},
                          headers={"X-Auth-Token": "file-token"})  # fmt: skip
        assert reset.status_code == 409 and "engine that runs it" in reset.text


def test_a_busy_server_never_blocks_on_its_own_output(store_file, tmp_path):
    """Each request writes an access-log line: well past what a pipe holds (64 KiB), every request
    is still answered within its timeout."""
    with served_with_token_file(store_file, tmp_path) as (served, port):
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5) as http:
            for _ in range(5000):
                if served.log.stat().st_size > 2 * 65536:
                    break
                assert http.get("/v3/").status_code == 200
        assert served.log.stat().st_size > 2 * 65536


def test_stopping_a_server_that_ignores_terminate_kills_it(tmp_path):
    """The test support's own bound: a server that does not end on SIGTERM is killed, not leaked."""
    script = (
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('ready', flush=True); time.sleep(60)"
    )
    log = tmp_path / "stubborn.log"
    with log.open("wb") as output:
        process = subprocess.Popen([sys.executable, "-c", script], stdout=output)
    served = Served(process, log)
    seconds_until(lambda: log.read_text() == "ready\n", 10, "the child ignores SIGTERM")
    stop(served, seconds=0.5)
    assert process.returncode == -signal.SIGKILL


def run_main(monkeypatch, capsys, *args: str) -> tuple[int, str]:
    """`statecore ...` in this process, through ``main()`` as the console script runs it."""
    monkeypatch.delenv("STATECORE_ADMIN_TOKEN", raising=False)
    monkeypatch.setattr(sys, "argv", ["statecore", *args])
    with pytest.raises(SystemExit) as exited:
        main()
    return exited.value.code, capsys.readouterr().err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), "error: no admin token: pass --admin-token-file FILE or set STATECORE_ADMIN_TOKEN\n"),
        (("--admin-token-file", "/nonexistent/token"), "error: cannot read the admin token file /nonexistent/token"),
    ],
)
def test_statecore_serve_refuses_to_start_without_an_admin_token(monkeypatch, capsys, store_file, args, message):
    code, err = run_main(monkeypatch, capsys, "serve", "--db", str(store_file), *args)
    assert code == 2 and err.startswith(message) and len(err.splitlines()) == 1


def test_statecore_serve_refuses_a_store_that_does_not_exist(monkeypatch, capsys, tmp_path):
    token_file = tmp_path / "token"
    token_file.write_text("t")
    code, err = run_main(monkeypatch, capsys, "serve", "--db", str(tmp_path / "no.sqlite"), "--admin-token-file",
                         str(token_file))  # fmt: skip
    assert code == 2 and "no store at" in err and not (tmp_path / "no.sqlite").exists()
