"""The throwaway PostgreSQL server of the tests leaves nothing behind a run that ended without its clean-up."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from pg_server import PREFIX, postgres_bindir, sweep


def test_a_directory_left_by_a_run_that_is_gone_is_swept_and_a_live_runs_is_kept():
    bindir = postgres_bindir()
    if bindir is None:
        pytest.skip("needs Debian's postgresql package")
    ended = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    left = Path(tempfile.mkdtemp(prefix=PREFIX))
    (left / "owner.pid").write_text(ended.stdout)  # that process has ended: nobody will clean up
    live = Path(tempfile.mkdtemp(prefix=PREFIX))
    (live / "owner.pid").write_text(f"{os.getpid()}\n")
    try:
        removed = sweep(bindir, ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else [])
        assert left in removed and not left.exists()
        assert live not in removed and live.exists()
    finally:
        shutil.rmtree(live)
