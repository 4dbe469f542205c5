"""The service list: rows of the contract, backend_state rules, admin-only fields, disable/enable."""

from __future__ import annotations

import pytest
from support import Harness


def started(*backend_state: str, **settings) -> Harness:
    h = Harness(backend_stats_polling_interval=30, **settings)
    h.add("node1@lvm", "volume", h.driver("ok", backend_state=list(backend_state)))
    h.add("bk1", "backup", h.driver("ok"))
    h.engine.start()
    h.engine.advance(0)
    return h


@pytest.mark.parametrize(
    ("reported", "shown"), [("up", "up"), ("down", "down"), ("omit", "up"), ("degraded", "down"), ("raise", "down")]
)
def test_backend_state_follows_the_drivers_stats(reported, shown, caplog_loguru):
    h = started(reported)
    assert h.engine.service("node1@lvm").backend_state == shown
    if reported in ("degraded", "raise"):
        assert "backend_state is down" in caplog_loguru.text or "malformed backend_state" in caplog_loguru.text


def test_volumes_entering_up_together_share_one_stats_poll_job():
    h = Harness(backend_stats_polling_interval=30)
    hosts = {"node1@lvm": ["up", "up"], "node2@lvm": ["up", "down"], "node3@lvm": ["up", "degraded"]}
    for name, polls in hosts.items():
        h.add(name, "volume", h.driver("ok", backend_state=polls))
    h.engine.start()
    h.engine.advance(0)
    for name in hosts:  # down and up again at one instant: each up entry asks for a poll
        h.engine.fire(name, "heartbeat_expired")
        h.engine.fire(name, "heartbeat")
    assert [job for job in h.job_ids() if job.startswith("stats")] == ["stats"]
    h.engine.advance(0)
    assert {row.host: row.backend_state for row in h.engine.service_list()} == {
        "node1@lvm": "up",
        "node2@lvm": "down",
        "node3@lvm": "down",
    }
    assert "stats" not in h.job_ids()


def test_backend_state_is_refreshed_by_the_stats_job():
    h = started("up", "down")
    h.engine.advance(30)
    assert h.engine.service("node1@lvm").backend_state == "down"


def test_backend_state_is_null_while_not_up_and_for_backups():
    h = Harness()
    h.add("node1@lvm", "volume", h.driver("recoverable"))
    h.add("bk1", "backup", h.driver("ok"))
    h.engine.start()
    h.engine.advance(0)
    rows = {row.host: row for row in h.engine.service_list()}
    assert rows["node1@lvm"].backend_state is None and rows["bk1"].backend_state is None


def test_non_admins_see_neither_backend_state_nor_error_text():
    h = Harness()
    h.add("node1@lvm", "volume", h.driver("ok"))
    h.add("node2@lvm", "volume", h.driver("recoverable"))
    h.engine.start()
    h.engine.advance(0)
    for row in h.engine.service_list(admin=False):
        assert row.backend_state is None and row.last_error is None
    assert h.engine.service("node2@lvm").last_error == "ConnectionError: storage not reachable (attempt 1)"


def test_row_has_every_field_of_the_contract():
    h = started("up")
    row = h.engine.service("node1@lvm").model_dump()
    assert set(row) == {
        "host", "binary", "zone", "status", "disabled_reason", "state", "lifecycle", "updated_at",
        "attempts", "total_attempts", "retries_left", "next_retry_at", "last_error", "backend_state",
    }  # fmt: skip
    assert (row["status"], row["state"], row["lifecycle"].value, row["attempts"]) == ("enabled", "up", "up", 1)


def test_backend_state_command_asks_the_driver_directly():
    h = started("up", "down")
    assert h.engine.backend_state("node1@lvm") == "down"
    assert h.engine.service("node1@lvm").backend_state == "up"  # the cached value is untouched


def test_disable_and_enable_keep_the_reason_and_the_lifecycle():
    h = started("up")
    row = h.engine.disable("bk1", "maintenance")
    assert (row.status, row.disabled_reason, row.state) == ("disabled", "maintenance", "up")
    assert h.engine.enable("bk1").status == "enabled"
    assert h.engine.service("bk1").disabled_reason is None


def test_filters_by_binary_and_host():
    h = started("up")
    assert [row.host for row in h.engine.service_list(binary="backup")] == ["bk1"]
    assert [row.host for row in h.engine.service_list(host="node1@lvm")] == ["node1@lvm"]


def test_disable_and_enable_are_audited_in_history_and_notified():
    h = started("up")
    h.engine.disable("bk1", "maintenance")
    h.engine.enable("bk1")
    audit = [(r.event, r.from_state, r.to_state, r.reason) for r in h.engine.history("bk1")][-2:]
    assert audit == [
        ("disable", "up", "up", "maintenance"),
        ("enable", "up", "up", "an admin lets the service take new work again"),
    ]
    assert h.sink.event_types()[-2:] == ["backup.service.disable", "backup.service.enable"]


def test_a_status_changed_in_the_store_by_another_host_is_taken_over_and_audited():
    h = started("up", report_interval=10)
    h.engine.store.set_status("backup/bk1", True, "set from another host")
    h.engine.advance(10)
    row = h.engine.service("bk1")
    assert (row.status, row.disabled_reason) == ("disabled", "set from another host")
    assert h.sink.envelopes[-1]["event_type"] == "backup.service.disable"
    assert h.sink.envelopes[-1]["payload"]["reason"] == "set from another host"


class PooledDriver:
    """A plain driver whose stats report pools, as Cinder's drivers do."""

    def __init__(self, stats: dict) -> None:
        self.stats = stats

    def do_setup(self) -> None: ...

    def check_for_setup_error(self) -> None: ...

    def get_volume_stats(self, refresh: bool = False) -> dict:
        return self.stats


def pools(*states: str) -> list[dict]:
    return [{"pool_name": f"p{i}", **({"backend_state": s} if s else {})} for i, s in enumerate(states)]


@pytest.mark.parametrize(
    ("stats", "shown"),
    [
        ({"pools": pools("down")}, "down"),  # the pool's, where Cinder's API reads it
        ({"pools": pools("down", "up")}, "up"),  # Cinder's map keeps the last pool listed
        ({"pools": pools("up", "down")}, "down"),
        ({"pools": pools("")}, "up"),  # a pool without the key is up
        ({"pools": pools("up"), "backend_state": "down"}, "up"),  # with pools, Cinder ignores the top level
        ({"pools": [], "backend_state": "down"}, "down"),  # no pools: the stats are the one pool
        ({"backend_state": "down"}, "down"),
    ],
)
def test_backend_state_is_read_from_the_pools_as_cinder_reads_it(stats, shown):
    h = Harness(backend_stats_polling_interval=30)
    h.add("node1@pooled", "volume", PooledDriver(stats))
    h.engine.start()
    h.engine.advance(0)
    assert (h.engine.service("node1@pooled").backend_state, h.engine.backend_state("node1@pooled")) == (shown, shown)
