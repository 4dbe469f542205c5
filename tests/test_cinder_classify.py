"""Cinder's init errors classified with Cinder's own exception classes, the table documented, and
the table replaceable."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from statecore.cinder import CINDER_RULES, cinder_classifier, make_classifier
from statecore.cinder.classify import markdown_table
from statecore.cinder.imports import cfg, exception, processutils
from statecore.errors import DriverNotSupported

ROOT = Path(__file__).resolve().parent.parent


def failed_command(exit_code: int) -> processutils.ProcessExecutionError:
    return processutils.ProcessExecutionError(exit_code=exit_code, cmd="env LC_ALL=C lvm version")


@pytest.mark.parametrize(
    "error",
    [
        exception.InvalidConfigurationValue(option="backup_s3_endpoint_url", value=None),
        exception.ConfigNotFound(path="/etc/cinder/api-paste.ini"),
        exception.NfsException("NFS config file at /etc/cinder/nfs_shares doesn't exist"),
        exception.NfsException("There's no NFS config file configured (nfs_shares_config)"),
        cfg.RequiredOptError("volume_group", cfg.OptGroup("lvm")),
        failed_command(127),  # run as root: the shell finds no lvm
        failed_command(96),  # run through sudo cinder-rootwrap: its filter finds no lvm (RC_NOEXECFOUND)
        FileNotFoundError(2, "No such file or directory", "sudo"),
        ImportError("No module named 'purestorage'"),
        exception.BackupDriverException(reason="boto3 python library not found"),
        exception.NfsException("mount.nfs is not installed"),
        exception.VolumeBackendAPIException(data="rados and rbd python libraries not found"),
        AttributeError("'NoneType' object has no attribute 'Rados'"),
        ValueError("Invalid endpoint: 127.0.0.1:9000"),
        DriverNotSupported("driver is unsupported and enable_unsupported_driver is false"),
    ],
    ids=lambda error: f"{type(error).__name__}-{str(error)[:24]}",
)
def test_configuration_missing_tools_and_unsupported_drivers_are_unrecoverable(error):
    assert cinder_classifier(error) is True


@pytest.mark.parametrize(
    "error",
    [
        exception.NfsException("Mount failure for 10.0.0.5:/export after 3 attempts"),
        failed_command(5),  # lvm is there; the volume group is not (yet)
        exception.VolumeBackendAPIException(data="array 10.9.8.7 did not answer"),
        exception.BackupDriverException(reason="bucket listing refused"),
        ConnectionRefusedError(111, "Connection refused"),
        TimeoutError("login timed out"),
        PermissionError(13, "Permission denied", "/dev/sdb"),
        ValueError("volume size must be positive"),
    ],
    ids=lambda error: type(error).__name__,
)
def test_everything_else_is_recoverable(error):
    assert cinder_classifier(error) is False


def test_another_table_replaces_cinders():
    """An operator who knows their NFS servers come back may call a missing shares file recoverable."""
    missing = exception.NfsException("NFS config file at /etc/cinder/nfs_shares doesn't exist")
    relaxed = make_classifier([rule for rule in CINDER_RULES if rule.kind is not exception.RemoteFSException])
    assert (cinder_classifier(missing), relaxed(missing)) == (True, False)
    assert relaxed(failed_command(127)) is True


def test_the_documented_table_is_the_one_that_runs():
    assert markdown_table() in (ROOT / "docs" / "cinder.md").read_text(encoding="utf-8")


def test_statecore_without_a_cinder_config_never_imports_cinder():
    code = (
        "import sys, statecore, statecore.cli, statecore.live, statecore.api, statecore.sim\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('cinder', 'eventlet') or m == 'statecore.cinder'))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert result.stdout.strip() == "[]"
