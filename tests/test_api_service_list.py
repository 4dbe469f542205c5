"""GET os-services: Cinder's fields and formats, microversions 3.0 to 3.49, filters, admin policy."""

from __future__ import annotations

import re

import pytest
from api_support import ADMIN, SECRET, SERVICES, USER, engine_client

from statecore.api.faults import ApiFault
from statecore.api.microversion import MAX_VERSION, MIN_VERSION, Version, negotiate

CINDER_FIELDS = {"binary", "host", "zone", "status", "state", "updated_at", "disabled_reason"}
REPLICATION_FIELDS = {"replication_status", "active_backend_id", "frozen"}
LIFECYCLE_ORDER = ("lifecycle", "attempts", "total_attempts", "retries_left", "next_retry_at", "last_error")
LIFECYCLE_FIELDS = set(LIFECYCLE_ORDER)


@pytest.fixture(scope="module")
def api():
    return engine_client()[1]


def listing(api, version: str | None = None, **params: str) -> dict:
    """The list as an admin sees it; statecore's own fields asked for, unless ``params`` say otherwise."""
    params.setdefault("with_lifecycle", "true")
    headers = dict(ADMIN, **({"OpenStack-API-Version": version} if version else {}))
    response = api.get(SERVICES, headers=headers, params=params)
    assert response.status_code == 200, response.text
    return response.json()


def by_host(body: dict) -> dict[str, dict]:
    return {row["host"]: row for row in body["services"]}


def test_without_a_version_header_the_minimum_is_served_and_echoed(api):
    response = api.get(SERVICES, headers=ADMIN)
    assert response.headers["OpenStack-API-Version"] == "volume 3.0"
    assert response.headers["Vary"] == "OpenStack-API-Version"
    for row in response.json()["services"]:
        assert set(row) == CINDER_FIELDS | (REPLICATION_FIELDS if row["binary"] == "cinder-volume" else set())


@pytest.mark.parametrize("version", ["volume 3.0", "volume 3.48", "volume 3.49"])
def test_rows_have_cinders_keys_in_cinders_order(api, version):
    """As cinder/api/v3/services.py builds them, with the os-extended-services fields a default Cinder loads."""
    rows = by_host(listing(api, version, with_lifecycle="false"))
    later = version != "volume 3.0"
    volume_keys = ["binary", "host", "zone", "status", "state", "updated_at"]
    volume_keys += ["backend_state"] * (version == "volume 3.49") + ["cluster"] * later
    volume_keys += ["disabled_reason", "replication_status", "active_backend_id", "frozen"]
    assert list(rows["node1@lvm"]) == volume_keys
    assert [key for key in volume_keys if key in rows["node1"]] == list(rows["node1"])
    assert (rows["node1@lvm"]["replication_status"], rows["node1@lvm"]["frozen"]) == ("not-capable", False)
    assert rows["node1@lvm"]["active_backend_id"] is None and "frozen" not in rows["node1"]


@pytest.mark.parametrize("value", ["true", "True", "1", "yes", "on"])
def test_with_lifecycle_adds_statecores_fields_after_cinders(api, value):
    for row in listing(api, with_lifecycle=value)["services"]:
        assert list(row)[-len(LIFECYCLE_FIELDS) :] == sorted(LIFECYCLE_FIELDS, key=list(LIFECYCLE_ORDER).index)


def test_with_lifecycle_takes_only_a_boolean(api):
    response = api.get(SERVICES, headers=ADMIN, params={"with_lifecycle": "maybe"})
    assert response.status_code == 400 and "with_lifecycle" in response.json()["badRequest"]["message"]


def test_rows_carry_cinders_binary_names_state_and_statecores_lifecycle(api):
    rows = by_host(listing(api))
    assert {host: (row["binary"], row["state"], row["lifecycle"]) for host, row in rows.items()} == {
        "node1@lvm": ("cinder-volume", "up", "up"),
        "node2@array": ("cinder-volume", "down", "failed_permanent"),
        "node1": ("cinder-backup", "up", "up"),
        "node3": ("cinder-backup", "up", "up"),
    }
    assert rows["node3"]["zone"] == "az2" and rows["node1"]["status"] == "enabled"


def test_updated_at_is_in_cinders_format_utc_without_a_zone_designator(api):
    rows = by_host(listing(api))
    assert rows["node1@lvm"]["updated_at"] == "2026-01-01T00:00:30.000000"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}", rows["node1"]["updated_at"])
    assert rows["node2@array"]["updated_at"] == "2026-01-01T00:00:00.000000"  # never reported: since registration


@pytest.mark.parametrize("version", ["volume 3.49", "volume latest", "VOLUME 3.49", "compute 2.90, volume 3.49"])
def test_backend_state_is_on_volume_rows_only_from_3_49(api, version):
    rows = by_host(listing(api, version))
    assert rows["node1@lvm"]["backend_state"] == "up"
    assert rows["node2@array"]["backend_state"] == "down"  # not up: a string still, as tempest wants
    assert "backend_state" not in rows["node1"] and "backend_state" not in rows["node3"]


@pytest.mark.parametrize("version", [None, "volume 3.0", "volume 3.48"])
def test_below_3_49_no_row_has_backend_state(api, version):
    assert all("backend_state" not in row for row in listing(api, version)["services"])


@pytest.mark.parametrize(("version", "has_cluster"), [("3.6", False), ("3.7", True), ("latest", True)])
def test_cluster_is_null_from_3_7_because_statecore_has_no_clusters(api, version, has_cluster):
    for row in listing(api, f"volume {version}")["services"]:
        assert ("cluster" in row) is has_cluster and row.get("cluster") is None


def test_the_served_version_is_echoed(api):
    response = api.get(SERVICES, headers={**ADMIN, "OpenStack-API-Version": "volume latest"})
    assert response.headers["OpenStack-API-Version"] == "volume 3.49"


def test_admins_see_the_drivers_last_error(api):
    assert SECRET in by_host(listing(api))["node2@array"]["last_error"]


@pytest.mark.parametrize(
    ("params", "hosts"),
    [
        ({"host": "node1"}, {"node1"}),
        ({"host": "node1@lvm"}, {"node1@lvm"}),
        ({"binary": "cinder-backup"}, {"node1", "node3"}),
        ({"binary": "cinder-volume", "host": "node2@array"}, {"node2@array"}),
        ({"binary": "cinder-scheduler"}, set()),
        ({"binary": "backup"}, set()),  # Cinder's names only
        ({"host": "nowhere"}, set()),
    ],
)
def test_host_and_binary_filter_as_cinder(api, params, hosts):
    assert set(by_host(listing(api, **params))) == hosts


@pytest.mark.parametrize(
    ("header", "message"),
    [
        ("volume 3.x", "API Version String 3.x is of invalid format. Must be of format MajorNum.MinorNum."),
        ("volume 03.1", "API Version String 03.1 is of invalid format. Must be of format MajorNum.MinorNum."),
        ("volume 3.", "API Version String 3. is of invalid format. Must be of format MajorNum.MinorNum."),
        ("volume", "OpenStack-API-Version entry 'volume' must be 'volume X.Y'."),
        ("volume 3.1 3.2", "OpenStack-API-Version entry 'volume 3.1 3.2' must be 'volume X.Y'."),
    ],
)
def test_a_malformed_version_is_400_in_cinders_shape(api, header, message):
    response = api.get(SERVICES, headers={**ADMIN, "OpenStack-API-Version": header})
    assert response.status_code == 400
    assert response.json() == {"badRequest": {"code": 400, "message": message}}


@pytest.mark.parametrize("version", ["3.50", "2.0", "4.0", "1.49"])
def test_a_version_out_of_range_is_406_a_compute_fault_as_cinder_answers(api, version):
    response = api.get(SERVICES, headers={**ADMIN, "OpenStack-API-Version": f"volume {version}"})
    assert response.status_code == 406
    message = f"Version {version} is not supported by the API. Minimum is 3.0 and maximum is 3.49."
    assert response.json() == {"computeFault": {"code": 406, "message": message}}


@pytest.mark.parametrize(
    ("header", "version"),
    [
        (None, MIN_VERSION),
        ("compute 2.1", MIN_VERSION),
        ("volume 3.0", Version(3, 0)),
        ("volume 3.10", Version(3, 10)),
        ("volume 3.49", MAX_VERSION),
        ("volume latest", MAX_VERSION),
        (" Volume 3.7 ,compute 2.1", Version(3, 7)),
    ],
)
def test_negotiation(header, version):
    assert negotiate(header) == version


def test_versions_compare_numerically_not_as_text():
    assert Version(3, 10) > Version(3, 9) and negotiate("volume 3.9") < negotiate("volume 3.10")


def test_negotiation_errors_carry_their_http_code():
    with pytest.raises(ApiFault) as caught:
        negotiate("volume 3.999")
    assert caught.value.code == 406


def test_without_a_token_the_list_is_401_unauthorized(api):
    response = api.get(SERVICES)
    assert response.status_code == 401
    assert response.json() == {
        "unauthorized": {"code": 401, "message": "The request you have made requires authentication."}
    }


def test_an_unknown_token_is_401(api):
    assert api.get(SERVICES, headers={"X-Auth-Token": "guess"}).status_code == 401


def test_a_non_admin_gets_403_forbidden_naming_cinders_policy_rule(api):
    response = api.get(SERVICES, headers=USER)
    assert response.status_code == 403
    assert response.json() == {
        "forbidden": {"code": 403, "message": "Policy doesn't allow volume_extension:services:index to be performed."}
    }
    assert response.headers["OpenStack-API-Version"] == "volume 3.0"  # errors echo the version too, as Cinder's


def test_unknown_paths_and_methods_answer_in_cinders_shape(api):
    assert api.get("/v3/p/os-volumes").json() == {"itemNotFound": {"code": 404, "message": "Not Found"}}
    assert api.delete(SERVICES, headers=ADMIN).json() == {"badMethod": {"code": 405, "message": "Method Not Allowed"}}


@pytest.mark.parametrize(
    ("path", "allowed"),
    [("/", "GET, HEAD, OPTIONS"), ("/v3", "GET, HEAD, OPTIONS"), ("/v3/", "GET, HEAD, OPTIONS"), (SERVICES, "GET"),
     ("/v3/os-services", "GET"),
     (f"{SERVICES}/enable", "PUT"), ("/v3/os-services/disable", "PUT"), (f"{SERVICES}/freeze", "PUT")],
)  # fmt: skip
@pytest.mark.parametrize("method", ["TRACE", "DELETE", "PATCH"])
def test_a_method_a_path_does_not_take_is_405_naming_the_ones_it_does(api, path, allowed, method):
    response = api.request(method, path, headers=ADMIN)
    assert response.status_code == 405 and response.headers["Allow"] == allowed
    assert response.json() == {"badMethod": {"code": 405, "message": "Method Not Allowed"}}


@pytest.mark.parametrize(("path", "status"), [("/", 300), ("/v3", 200), ("/v3/", 200)])
@pytest.mark.parametrize("method", ["HEAD", "OPTIONS"])
def test_load_balancer_probes_get_the_version_documents_answer(api, path, status, method):
    """haproxy's ``option httpchk`` sends ``OPTIONS /``; Cinder routes ``/`` with no method condition."""
    response = api.request(method, path)
    assert response.status_code == status
    if method == "OPTIONS":
        assert response.json() == api.get(path).json()


def test_the_list_answers_with_and_without_a_project_id_alike(api):
    assert listing(api) == api.get("/v3/os-services", headers=ADMIN, params={"with_lifecycle": "1"}).json()


CINDER_VERSION = {
    "id": "v3.0", "status": "CURRENT", "version": "3.49", "min_version": "3.0", "updated": "2017-09-19T20:18:14Z",
    "links": [{"rel": "describedby", "type": "text/html", "href": "https://docs.openstack.org/"},
              {"rel": "self", "href": "http://testserver/v3/"}],
    "media-types": [{"base": "application/json", "type": "application/vnd.openstack.volume+json;version=3"}],
}  # fmt: skip


def test_the_root_is_cinders_version_list_with_300_multiple_choices_and_needs_no_token(api):
    response = api.get("/")
    assert response.status_code == 300 and response.json() == {"versions": [CINDER_VERSION]}


@pytest.mark.parametrize("path", ["/v3", "/v3/"])
def test_v3_answers_cinders_version_document_without_a_token(api, path):
    response = api.get(path)
    assert response.status_code == 200 and response.json() == {"versions": [CINDER_VERSION]}
    assert response.headers["OpenStack-API-Version"] == "volume 3.0"
