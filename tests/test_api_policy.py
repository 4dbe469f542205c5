"""Who may do what over HTTP, and that nothing a driver says reaches a non-admin."""

from __future__ import annotations

import pytest
from api_support import ADMIN, SECRET, USER, fleet
from fastapi.testclient import TestClient
from test_examples import load_example

from statecore.api import StaticTokenPolicy
from statecore.api.policy import admin_token
from statecore.errors import StatecoreError

example = load_example("backup_endpoint")


def test_the_admin_token_has_the_admin_role_and_others_theirs():
    policy = StaticTokenPolicy("s3cret", {"member-token": ["member", "reader"]})
    assert policy.roles("s3cret") == {"admin"}
    assert policy.roles("member-token") == {"member", "reader"}
    assert policy.roles("s3cre") is None and policy.roles("") is None


def test_an_empty_admin_token_is_refused():
    with pytest.raises(StatecoreError, match="empty"):
        StaticTokenPolicy("")


def test_the_token_file_wins_over_the_environment(tmp_path):
    token_file = tmp_path / "token"
    token_file.write_text("from-file\n")
    assert admin_token(token_file, {"STATECORE_ADMIN_TOKEN": "from-env"}) == "from-file"
    assert admin_token(None, {"STATECORE_ADMIN_TOKEN": " from-env "}) == "from-env"


@pytest.mark.parametrize(
    ("content", "environ", "message"),
    [
        (None, {}, "no admin token: pass --admin-token-file FILE or set STATECORE_ADMIN_TOKEN"),
        (None, {"STATECORE_ADMIN_TOKEN": "  "}, "no admin token"),
        ("\n", {}, "is empty"),
        ("missing", {}, "cannot read the admin token file"),
    ],
)
def test_without_a_usable_admin_token_there_is_no_server(tmp_path, content, environ, message):
    token_file = None
    if content is not None:
        token_file = tmp_path / "token"
        if content != "missing":
            token_file.write_text(content)
    with pytest.raises(StatecoreError, match=message):
        admin_token(token_file, environ)


def requests_to_every_endpoint(app, backup_id: str):
    """(method, path, body) for every route the example serves: its own and statecore's mounted ones."""
    from statecore.api.app import openapi_document

    values = {"{project_id}": "project-1", "{backup_id}": backup_id}
    paths = {**openapi_document()["paths"], **app.openapi()["paths"]}
    body = {"host": "node2@array", "binary": "cinder-volume", "disabled_reason": "x", "volume_id": "v", "zone": "az9"}
    for path, operations in paths.items():
        for placeholder, value in values.items():
            path = path.replace(placeholder, value)
        for method in operations:
            yield method, path, body
    yield "put", "/v3/project-1/os-services/freeze", body  # the catch-all for Cinder's other actions


@pytest.mark.parametrize("headers", [USER, {}, {"X-Auth-Token": "forged"}], ids=["member", "anonymous", "forged"])
def test_no_endpoint_shows_a_non_admin_a_drivers_error_text_or_configuration(headers):
    engine = fleet().engine
    assert SECRET in engine.service("node2@array").last_error  # the secret is there to leak
    api = TestClient(example.BackupApi(engine, example.example_policy()).app)
    backup_id = api.post("/backups", json={"volume_id": "v"}, headers=ADMIN).json()["backup"]["id"]
    seen = 0
    for version in ("volume 3.0", "volume latest"):
        for method, path, body in requests_to_every_endpoint(api.app, backup_id):
            response = api.request(method, path, json=body, headers={**headers, "OpenStack-API-Version": version})
            assert response.status_code < 500, (method, path, response.text)
            assert SECRET not in response.text and "hunter2" not in str(response.headers), (method, path)
            seen += 1
    assert seen >= 20
