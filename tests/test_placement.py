"""Backup placement and the guards of BEHAVIOR.md section 9, as pure functions over service rows."""

from __future__ import annotations

import itertools
from collections import Counter

import pytest
from support import Harness

from statecore.errors import InvalidBackup, NoServiceAvailable, ServiceUnavailable, StatecoreError, UnknownService
from statecore.placement import (
    BACKUP_SERVICE_DOWN,
    NO_BACKUP_SERVICE,
    BackupRecord,
    backup_candidates,
    create_backup,
    delete_backup,
    pick_backup_host,
    require_up,
)
from statecore.records import ServiceRow
from statecore.table import State


def row(host: str, binary: str = "backup", *, state: str = "up", status: str = "enabled", zone: str = "nova"):
    return ServiceRow(
        host=host, binary=binary, zone=zone, status=status, disabled_reason=None, state=state,
        lifecycle=State.UP if state == "up" else State.DOWN, updated_at=None, attempts=1, total_attempts=1,
        retries_left=3, next_retry_at=None, last_error=None, backend_state=None,
    )  # fmt: skip


FLEET = [
    row("b1"), row("b2"), row("b3", state="down"), row("b4", status="disabled"), row("b5", zone="az2"),
    row("node1@lvm", "volume"),
]  # fmt: skip


def test_candidates_are_backup_services_up_enabled_and_in_the_zone():
    assert [r.host for r in backup_candidates(FLEET, "nova")] == ["b1", "b2"]
    assert [r.host for r in backup_candidates(FLEET, "az2")] == ["b5"]


def test_the_pick_is_one_of_the_candidates():
    assert pick_backup_host(FLEET, "nova", key="vol-1") in {"b1", "b2"}
    assert pick_backup_host(FLEET, "az2") == "b5"


def test_no_candidate_is_no_service_available_with_cinders_message_024():
    with pytest.raises(NoServiceAvailable, match=r"^Service not found for creating backup\.$") as caught:
        pick_backup_host(FLEET, "az9")
    assert caught.value.message_id == "024" and str(caught.value) == NO_BACKUP_SERVICE


def test_the_pick_is_deterministic_whatever_the_row_order():
    picks = {pick_backup_host(list(order), "nova", key="vol-7") for order in itertools.permutations(FLEET)}
    assert len(picks) == 1


def test_different_volumes_spread_over_the_hosts():
    fleet = [row(f"b{n}") for n in range(4)]
    counts = Counter(pick_backup_host(fleet, "nova", key=f"vol-{n}") for n in range(400))
    assert set(counts) == {"b0", "b1", "b2", "b3"} and min(counts.values()) > 60


def test_a_host_leaving_moves_only_the_volumes_that_were_on_it():
    fleet = [row(f"b{n}") for n in range(4)]
    before = {n: pick_backup_host(fleet, "nova", key=f"vol-{n}") for n in range(200)}
    after = {n: pick_backup_host(fleet[1:], "nova", key=f"vol-{n}") for n in range(200)}
    assert {n for n in before if before[n] != after[n]} == {n for n in before if before[n] == "b0"}


def test_same_host_takes_only_the_volumes_own_host():
    fleet = [row("node1"), row("node2"), row("node2@lvm", "volume")]
    for key in ("a", "b", "c"):
        assert pick_backup_host(fleet, "nova", volume_host="node2@lvm#pool", same_host=True, key=key) == "node2"
    with pytest.raises(NoServiceAvailable):  # node3 has no backup service, though node1 and node2 are up
        pick_backup_host(fleet, "nova", volume_host="node3@lvm", same_host=True)


def test_same_host_off_ignores_the_volume_host():
    assert pick_backup_host([row("node1")], "nova", volume_host="node3@lvm") == "node1"


def test_require_up_returns_the_row_of_a_service_that_is_up():
    assert require_up(FLEET, "b1", "backup").host == "b1"
    assert require_up(FLEET, "b4", "backup").status == "disabled"  # disabled still serves existing work


def test_a_backup_service_that_is_down_fails_fast_with_cinders_message_018():
    with pytest.raises(ServiceUnavailable, match=r"^Backup service is down\.$") as caught:
        require_up(FLEET, "b3", "backup")
    assert (caught.value.host, caught.value.binary, caught.value.message_id) == ("b3", "backup", "018")
    assert str(caught.value) == BACKUP_SERVICE_DOWN


def test_a_volume_service_that_is_down_fails_fast_naming_no_host():
    with pytest.raises(ServiceUnavailable, match=r"^Volume service is down\.$") as caught:
        require_up([row("node1@lvm", "volume", state="down")], "node1@lvm", "volume")
    assert caught.value.host == "node1@lvm"


def test_require_up_of_a_service_that_does_not_exist_is_unknown_service():
    with pytest.raises(UnknownService):
        require_up(FLEET, "b1", "volume")


def test_a_new_backup_goes_to_the_picked_host():
    record = create_backup(FLEET, backup_id="bk-1", volume_id="vol-1", zone="nova")
    assert record == BackupRecord("bk-1", "vol-1", "nova", "creating", pick_backup_host(FLEET, "nova", key="vol-1"))


def test_a_backup_no_service_can_take_is_error_with_no_service():
    record = create_backup(FLEET, backup_id="bk-1", volume_id="vol-1", zone="az9")
    assert (record.status, record.service, record.fail_reason) == ("error", None, NO_BACKUP_SERVICE)


def test_a_backup_that_failed_before_any_service_took_it_stays_deletable_while_every_backup_service_is_down():
    all_down = [row("b1", state="down"), row("b2", state="down")]
    failed = create_backup(all_down, backup_id="bk-1", volume_id="vol-1", zone="nova")
    assert delete_backup(failed, all_down).status == "deleted"


def test_deleting_a_backup_a_service_took_needs_that_service_up():
    taken = BackupRecord("bk-1", "vol-1", "nova", "available", "b3")
    with pytest.raises(ServiceUnavailable, match="Backup service is down"):
        delete_backup(taken, FLEET)
    assert delete_backup(BackupRecord("bk-2", "vol-1", "nova", "error", "b1"), FLEET).status == "deleted"


def test_only_available_or_error_backups_can_be_deleted():
    with pytest.raises(InvalidBackup, match="must be available or error, but is creating"):
        delete_backup(BackupRecord("bk-1", "vol-1", "nova", "creating", "b1"), FLEET)


@pytest.mark.parametrize("error", [NoServiceAvailable, ServiceUnavailable, InvalidBackup])
def test_placement_errors_are_statecore_errors(error):
    assert issubclass(error, StatecoreError)


def test_placement_works_on_an_engines_service_list():
    harness = Harness(backup_periodic_initialization=True, periodic_interval=5)
    harness.add("node1", "backup", harness.driver("ok"))
    harness.add("node2", "backup", harness.driver("recoverable"))
    harness.engine.start()
    harness.engine.advance(10)
    rows = harness.engine.service_list(admin=False)
    assert pick_backup_host(rows, "nova", key="vol-1") == "node1"
    with pytest.raises(ServiceUnavailable):
        require_up(rows, "node2", "backup")
