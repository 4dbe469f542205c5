"""PUT os-services/{enable,disable,disable-log-reason,reset}: through the engine or the store, in Cinder's shapes."""

from __future__ import annotations

import pytest
from api_support import ADMIN, SECRET, SERVICES, USER, client, engine_client, fleet
from support import Harness

from statecore.api import StoreSource
from statecore.records import ServiceRow
from statecore.store import open_store
from statecore.store.base import StoreUnavailable


@pytest.fixture
def engine_api():
    return engine_client()


@pytest.fixture
def store_api(tmp_path):
    """A SQLite store written by an engine (as `statecore run` would), served by a StoreSource."""
    store = open_store(str(tmp_path / "state.sqlite"))
    fleet(Harness(store=store))
    return store, client(StoreSource(store, service_down_time=60))


def put(api, action: str, body: dict, headers: dict = ADMIN):
    return api.put(f"{SERVICES}/{action}", json=body, headers=headers)


def row(api, host: str) -> dict:
    return next(r for r in api.get(SERVICES, headers=ADMIN).json()["services"] if r["host"] == host)


@pytest.mark.parametrize("source", ["engine", "store"])
def test_disable_then_enable_round_trips_in_cinders_shape(source, engine_api, store_api):
    api = engine_api[1] if source == "engine" else store_api[1]
    response = put(api, "disable", {"host": "node1", "binary": "cinder-backup", "disabled_reason": "maintenance"})
    assert response.status_code == 200
    assert response.json() == {"host": "node1", "service": "", "binary": "cinder-backup", "status": "disabled",
                               "disabled": True}  # fmt: skip
    assert (row(api, "node1")["status"], row(api, "node1")["disabled_reason"]) == ("disabled", "maintenance")
    enabled = put(api, "enable", {"host": "node1", "binary": "cinder-backup"}).json()
    assert enabled == {"host": "node1", "service": "", "binary": "cinder-backup", "status": "enabled",
                       "disabled": False, "disabled_reason": None}  # fmt: skip
    assert row(api, "node1")["status"] == "enabled"


def test_disable_goes_through_the_engine_so_it_is_audited_and_notified(engine_api):
    harness, api = engine_api
    put(api, "disable", {"host": "node1@lvm", "disabled_reason": "array firmware"})
    assert harness.engine.service("node1@lvm").disabled_reason == "array firmware"
    assert harness.engine.history("node1@lvm")[-1].reason == "array firmware"
    assert harness.sink.event_types()[-1] == "volume.service.disable"


def test_binary_may_be_left_out_and_service_is_cinders_old_name_for_it(engine_api):
    """The answer echoes what the request named, as Cinder's does, ``""`` for what it left out."""
    _, api = engine_api
    disabled = put(api, "disable", {"host": "node3"}).json()
    assert (disabled["binary"], disabled["service"], disabled["status"]) == ("", "", "disabled")
    assert row(api, "node3")["status"] == "disabled"
    enabled = put(api, "enable", {"host": "node3", "service": "cinder-backup"}).json()
    assert (enabled["binary"], enabled["service"], enabled["status"]) == ("", "cinder-backup", "enabled")


def test_disable_without_a_reason_records_disabled_by_admin(engine_api):
    _, api = engine_api
    assert "disabled_reason" not in put(api, "disable", {"host": "node1"}).json()  # Cinder's answer has none
    assert row(api, "node1")["disabled_reason"] == "disabled by admin"


@pytest.mark.parametrize("body", [{"host": "node1"}, {"host": "node1", "disabled_reason": "   "},
                                  {"host": "node1", "disabled_reason": "x" * 256}])  # fmt: skip
def test_disable_log_reason_needs_a_real_reason(engine_api, body):
    _, api = engine_api
    response = put(api, "disable-log-reason", body)
    assert response.status_code == 400 and "disabled_reason" in response.json()["badRequest"]["message"]
    assert row(api, "node1")["status"] == "enabled"


def test_disable_log_reason_records_it(engine_api):
    _, api = engine_api
    response = put(
        api, "disable-log-reason", {"host": "node1", "binary": "cinder-backup", "disabled_reason": "disk swap"}
    )
    assert response.json() == {"host": "node1", "service": "", "binary": "cinder-backup", "status": "disabled",
                               "disabled": True, "disabled_reason": "disk swap"}  # fmt: skip
    assert row(api, "node1")["disabled_reason"] == "disk swap"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"host": "node9"}, "no service 'node9'"),
        ({"host": "node1", "binary": "cinder-volume"}, "no service 'node1' with binary 'cinder-volume'"),
        ({"host": "node1", "binary": "cinder-scheduler"}, "no service 'node1' with binary 'cinder-scheduler'"),
    ],
)
@pytest.mark.parametrize("action", ["enable", "disable", "reset"])
def test_an_unknown_service_is_404_item_not_found(engine_api, action, body, message):
    response = put(engine_api[1], action, body)
    assert response.status_code == 404
    assert response.json() == {"itemNotFound": {"code": 404, "message": message}}


@pytest.mark.parametrize("body", [{}, {"host": ""}, {"host": "node1", "bogus": 1}, [1, 2]])
def test_a_body_that_does_not_fit_is_400_bad_request(engine_api, body):
    response = put(engine_api[1], "disable", body)
    assert response.status_code == 400 and set(response.json()) == {"badRequest"}


@pytest.mark.parametrize(
    "body",
    [{"host": "node1", "binary": None}, {"host": "node1", "service": None}, {"host": "node1", "binary": ""},
     {"host": "node 1", "binary": "cinder-backup"}, {"host": None, "binary": "cinder-backup"}],
)  # fmt: skip
def test_a_body_cinders_schema_refuses_is_400(engine_api, body):
    response = put(engine_api[1], "enable", body)
    assert response.status_code == 400 and set(response.json()) == {"badRequest"}


@pytest.mark.parametrize("cluster", [None, "", "cluster1@lvm"])
def test_cluster_is_taken_as_cinders_schema_allows_and_ignored(engine_api, cluster):
    response = put(engine_api[1], "enable", {"host": "node1", "binary": "cinder-backup", "cluster": cluster})
    assert response.json() == {"host": "node1", "service": "", "binary": "cinder-backup", "status": "enabled",
                               "disabled": False, "disabled_reason": None}  # fmt: skip


def test_a_body_that_is_not_json_is_400_in_cinders_words(engine_api):
    headers = {**ADMIN, "Content-Type": "application/json"}
    response = engine_api[1].put(f"{SERVICES}/disable", content=b"{host", headers=headers)
    assert response.json() == {"badRequest": {"code": 400, "message": "Malformed message body: cannot understand JSON"}}


@pytest.mark.parametrize("action", ["freeze", "thaw", "failover_host"])
@pytest.mark.parametrize("version", ["3.0", "3.49"])
def test_cinders_replication_actions_are_501_at_every_version_not_a_200_that_changed_nothing(
    engine_api, action, version
):
    response = put(
        engine_api[1], action, {"host": "node1@lvm"}, headers={**ADMIN, "OpenStack-API-Version": f"volume {version}"}
    )
    assert (response.status_code, set(response.json())) == (501, {"notImplemented"})
    assert f"{action} is not implemented: statecore does no replication" in response.json()["notImplemented"]["message"]
    assert row(engine_api[1], "node1@lvm")["frozen"] is False


@pytest.mark.parametrize(("version", "status"), [("3.0", 404), ("3.31", 404), ("3.32", 501), ("3.49", 501)])
@pytest.mark.parametrize("action", ["get-log", "set-log"])
def test_log_level_actions_are_404_below_3_32_as_in_cinder_and_501_from_it(engine_api, action, version, status):
    response = put(engine_api[1], action, {}, headers={**ADMIN, "OpenStack-API-Version": f"volume {version}"})
    assert response.status_code == status
    assert set(response.json()) == {"itemNotFound" if status == 404 else "notImplemented"}


@pytest.mark.parametrize("headers", [ADMIN, USER])
def test_an_action_cinder_has_no_route_for_is_404_to_anyone(engine_api, headers):
    response = put(engine_api[1], "failover", {"host": "node1@lvm"}, headers=headers)
    assert response.json() == {"itemNotFound": {"code": 404, "message": "Not Found"}}


@pytest.mark.parametrize("action", ["enable", "disable", "disable-log-reason", "reset", "freeze"])
def test_non_admins_get_403_and_change_nothing(engine_api, action):
    harness, api = engine_api
    body = {"host": "node2@array", "disabled_reason": "x"}
    response = put(api, action, body, headers=USER)
    assert response.status_code == 403
    message = "Policy doesn't allow volume_extension:services:update to be performed."
    assert response.json() == {"forbidden": {"code": 403, "message": message}}
    assert harness.engine.service("node2@array").lifecycle.value == "failed_permanent"
    assert harness.engine.service("node2@array").status == "enabled"


def test_reset_of_a_failed_permanent_service_goes_through_the_engines_table(engine_api):
    harness, api = engine_api
    response = put(api, "reset", {"host": "node2@array", "binary": "cinder-volume", "reason": "array fixed"})
    assert response.status_code == 200
    body = response.json()
    assert (body["event"], body["from_state"], body["to_state"], body["reason"]) == (
        "reset", "failed_permanent", "initializing", "array fixed",
    )  # fmt: skip
    assert body["at"] == "2026-01-01T00:00:30.000000" and body["binary"] == "cinder-volume"
    assert harness.sink.envelopes[-1]["event_type"] == "volume.init.reset"


def test_reset_of_a_service_that_is_up_is_409_naming_state_and_event(engine_api):
    response = put(engine_api[1], "reset", {"host": "node1@lvm"})
    assert response.status_code == 409
    message = response.json()["conflictingRequest"]["message"]
    assert "'up'" in message and "'reset' is not allowed" in message


def test_the_standalone_server_refuses_reset_and_names_the_owning_engine(store_api):
    store, api = store_api
    response = put(api, "reset", {"host": "node2@array"})
    assert response.status_code == 409
    message = response.json()["conflictingRequest"]["message"]
    assert "'failed_permanent'" in message and "reset it through the engine that runs it" in message
    assert store.load("volume/node2@array").lifecycle.value == "failed_permanent"


class DownStore:
    """A source whose store is gone: what an action meets during a database outage."""

    def rows(self, *, host=None, binary=None) -> list[ServiceRow]:
        return fleet().engine.service_list(host=host, binary=binary)

    def disable(self, host, binary, reason):
        raise StoreUnavailable("store unreachable: connection refused")

    enable = reset = disable


def test_a_store_outage_is_503_service_unavailable():
    response = put(client(DownStore()), "disable", {"host": "node1"})
    assert response.status_code == 503
    assert response.json()["serviceUnavailable"]["message"] == "store unreachable: connection refused"


class CrashingSource(DownStore):
    def disable(self, host, binary, reason):
        raise RuntimeError(f"driver blew up: {SECRET}")


def test_an_unexpected_error_is_cinders_generic_500_without_its_text():
    response = put(client(CrashingSource(), raise_server_exceptions=False), "disable", {"host": "node1"})
    assert response.status_code == 500
    assert set(response.json()) == {"computeFault"} and SECRET not in response.text
