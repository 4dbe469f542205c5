"""``statecore service-list`` as a Cinder operator reads it, and what every command does with bad
numbers, missing stores and database URLs it does not support; ``--version`` and ``-h``."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from support import Harness
from test_cli_ops import invoke, run_cli
from test_retention import backdate_heartbeats

from statecore.screen import CINDER_COLUMNS, OWN_COLUMNS
from statecore.store.sql import SqlStore

FAST, SLOW = "fast@array", "slow@array"


@pytest.fixture
def db(tmp_path: Path) -> str:
    """A stopped engine's store: two volumes (6 s and 60 s of service_down_time) and a disabled backup,
    their last heartbeats 7 s old."""
    path = tmp_path / "state.sqlite"
    store = SqlStore(f"sqlite:///{path}")
    h = Harness(store=store, report_interval=1, service_down_time=6)
    h.add(FAST, "volume", h.driver("ok"))
    h.add(SLOW, "volume", h.driver("ok"), service_down_time=60)
    h.add("node1", "backup", h.driver("ok"), service_down_time=60)
    h.engine.start()
    h.engine.advance(1)
    h.engine.disable("node1", "maintenance")
    h.engine.shutdown()
    backdate_heartbeats(store, timedelta(seconds=7))
    store.close()
    return str(path)


def listed(*args: str) -> list[dict[str, object]]:
    result = invoke("service-list", *args, "--json")
    assert result.exit_code == 0, result.output
    rows: list[dict[str, object]] = json.loads(result.output)["services"]
    return rows


def test_the_table_has_cinders_columns_in_cinders_order_then_statecores(db):
    output = invoke("service-list", "--db", db).output
    header = next(line for line in output.splitlines() if "Binary" in line)
    columns = [cell.strip() for cell in header.strip("┃ ").split("┃")]
    assert columns == [*CINDER_COLUMNS, *OWN_COLUMNS]
    assert columns[:9] == [
        "Binary", "Host", "Zone", "Status", "State", "Updated_at", "Cluster", "Disabled Reason", "Backend State",
    ]  # fmt: skip
    rows = [line for line in output.splitlines() if line.startswith("│")]
    assert any(row.split("│")[1].strip() == "cinder-backup" and "maintenance" in row for row in rows)
    assert sum(row.split("│")[1].strip() == "cinder-volume" for row in rows) == 2


def test_json_rows_name_binaries_as_cinder_does_and_judge_each_by_its_stored_down_time(db):
    rows = {row["host"]: row for row in listed("--db", db)}
    assert {host: (row["binary"], row["state"]) for host, row in rows.items()} == {
        FAST: ("cinder-volume", "down"), SLOW: ("cinder-volume", "up"), "node1": ("cinder-backup", "up"),
    }  # fmt: skip
    assert rows["node1"]["disabled_reason"] == "maintenance" and rows["node1"]["cluster"] is None
    assert {row["host"]: row["state"] for row in listed("--db", db, "--service-down-time", "100")}[FAST] == "up"


@pytest.mark.parametrize(
    ("filters", "hosts"),
    [
        (("--binary", "cinder-backup"), {"node1"}),
        (("--binary", "volume"), {FAST, SLOW}),
        (("--host", SLOW), {SLOW}),
        (("--host", SLOW, "--binary", "cinder-backup"), set()),
    ],
)
def test_host_and_binary_filters_take_cinders_names_and_statecores(db, filters, hosts):
    assert {row["host"] for row in listed("--db", db, *filters)} == hosts


def test_an_unknown_binary_is_refused_by_name(db):
    result = run_cli("service-list", "--db", db, "--binary", "scheduler")
    one_line_refusal(result, "error: binary 'scheduler': choose volume or backup (or cinder-volume, cinder-backup)")


@pytest.mark.parametrize("name", ["cinder-backup", "backup"])
def test_disable_and_enable_take_both_binary_names_like_the_other_commands(db, name):
    disabled = invoke("disable", "node1", "--reason", "new disks", "--binary", name, "--db", db)
    assert disabled.output == "node1 (backup): disabled: new disks\n"
    assert [row["disabled_reason"] for row in listed("--db", db, "--binary", name)] == ["new disks"]
    assert invoke("enable", "node1", "--binary", name, "--db", db).output == "node1 (backup): enabled\n"
    assert [row["status"] for row in listed("--db", db, "--host", "node1")] == ["enabled"]


def test_disable_refuses_an_unknown_binary_as_every_command_does(db):
    result = run_cli("disable", "node1", "--reason", "x", "--binary", "cinder-scheduler", "--db", db)
    one_line_refusal(result, "error: binary 'cinder-scheduler': choose volume or backup (or cinder-volume, cinder-")
    assert result.stderr.rstrip().endswith("nothing was disabled")


def one_line_refusal(result, message: str) -> None:
    assert result.returncode == 2, result
    assert result.stderr.startswith(message) and result.stderr.count("\n") == 1, result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("service-list", "--service-down-time", "-5"), "error: option '--service-down-time': value -5.0 refused"),
        (("service-list", "--timeout", "0"), "error: option '--timeout': value 0.0 refused"),
        (("service", "remove", "h", "volume", "--service-down-time", "0"), "error: option '--service-down-time'"),
        (("reset", "h", "volume", "--timeout", "nan"), "error: option '--timeout': value nan refused: Input should"),
        (("serve", "--port", "70000"), "error: option '--port': value 70000 refused"),
        (("serve", "--service-down-time", "-1"), "error: option '--service-down-time'"),
        (("run", "x.toml", "--duration", "-1"), "error: option '--duration': value -1.0 refused"),
        (("demo", "--seconds", "0"), "error: option '--seconds': value 0.0 refused"),
    ],
)
def test_every_numeric_option_is_checked_like_the_settings(tmp_path, args, message):
    result = run_cli(*args, cwd=tmp_path)
    one_line_refusal(result, message)
    assert "rule: " in result.stderr
    assert list(tmp_path.iterdir()) == []  # nothing started, nothing created


@pytest.mark.parametrize(
    "args",
    [
        ("service-list", "--db", "sqlite:///nope.sqlite"),
        ("service-list", "--db", "nope.sqlite"),
        ("service", "remove", "h", "volume", "--db", "sqlite:///nope.sqlite"),
        ("reset", "h", "volume", "--db", "sqlite:///nope.sqlite"),
        ("purge", "--before", "2025-01-01", "--db", "sqlite:///nope.sqlite"),
        ("disable", "h", "--reason", "x", "--db", "sqlite:///nope.sqlite"),
    ],
)
def test_commands_on_an_existing_store_never_create_one(tmp_path, args):
    one_line_refusal(run_cli(*args, cwd=tmp_path), f"error: no store at {args[args.index('--db') + 1]}")
    assert not (tmp_path / "nope.sqlite").exists()


@pytest.mark.parametrize("url", ["mysql://statecore:secret@db/statecore", "mysql+pymysql://statecore:secret@db/x"])
def test_mysql_urls_are_refused_in_one_line_naming_what_is_missing(tmp_path, url):
    result = run_cli("service-list", "--db", url, cwd=tmp_path)
    one_line_refusal(result, "error: store mysql")
    assert "MySQL/MariaDB is not supported" in result.stderr and "PyMySQL" in result.stderr
    assert "secret" not in result.stderr


@pytest.mark.parametrize(
    "url",
    ["postgresql+psycopg2://u:secret@db/x", "postgresql+pg8000://u:secret@db/x", "postgresql+asyncpg://db/x",
     "sqlite+aiosqlite:///state.sqlite"],
)  # fmt: skip
def test_other_drivers_are_refused_in_one_line_naming_the_supported_ones(tmp_path, url):
    (tmp_path / "state.sqlite").touch()
    result = run_cli("service-list", "--db", url, cwd=tmp_path)
    one_line_refusal(result, f"error: store {url.replace('secret', '***')}: {url.split(':')[0]} is not supported")
    assert "use one of sqlite://, sqlite+pysqlite://, postgresql://, postgresql+psycopg://" in result.stderr


@pytest.mark.parametrize("address", ["127.0.0.1:99999", "127.0.0.1:0", "[::1]:65536"])
def test_runs_metrics_port_is_checked_like_serves_port(tmp_path, address):
    (tmp_path / "run.toml").write_text(
        f'store = "memory"\nnotifications = ""\nmetrics = "{address}"\n'
        '[[services]]\nhost = "n@b"\nbinary = "volume"\ndriver = "statecore.testing:ScriptedDriver"\n'
    )
    result = run_cli("run", "run.toml", "--duration", "0.1", cwd=tmp_path)
    one_line_refusal(result, "error: run.toml: metrics: ")
    assert f"value {address.rsplit(':', 1)[1]} refused" in result.stderr
    assert "(rule: a TCP port, 1 to 65535)" in result.stderr


@pytest.mark.parametrize("db", ["sqlite://", "sqlite:///:memory:", "memory"])
@pytest.mark.parametrize("command", [("service-list",), ("purge", "--before", "2025-01-01"), ("reset", "h", "volume")])
def test_an_in_memory_store_is_refused_where_a_store_must_exist(tmp_path, db, command):
    result = run_cli(*command, "--db", db, cwd=tmp_path)
    one_line_refusal(result, f"error: store {db} is in memory, new and empty")


def test_version_and_short_help(tmp_path):
    from importlib.metadata import version

    assert invoke("--version").output == f"statecore {version('statecore')}\n"
    assert "Usage:" in invoke("-h").output and "service-list" in invoke("-h").output
    assert "--binary" in invoke("service-list", "-h").output
    assert "fresh start" in invoke("reset", "-h").output
    assert "Usage:" in invoke("service", "remove", "-h").output
