"""Every ``python -m statecore`` command the README prints works as written from the repository root,
and writes nothing but under ``.statecore/`` (ignored by git).

They run in a temporary copy of ``examples/``, from its root, as a user would type them: ``run``
gets ``--duration`` so that it stops by itself, and ``serve`` (a server until Ctrl-C) is left to
tests/test_api_live.py, which starts the same app on loopback.
"""

from __future__ import annotations

import hashlib
import re
import shlex
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PREFIX = "python -m statecore "


def readme_commands() -> list[list[str]]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    commands = []
    for block in re.findall(r"```sh\n(.*?)```", text, flags=re.S):
        for line in block.splitlines():
            line = re.sub(r"\s+#.*$", "", line).strip()
            line = re.sub(r"^[A-Z_]+=\S+ ", "", line)  # an environment assignment before the command
            if line.startswith(PREFIX) and not line.startswith(PREFIX + "demo"):
                commands.append(shlex.split(line)[1:])  # without "python": run with this interpreter
    return commands


def tree(root: Path) -> dict[str, str]:
    return {
        str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(root.rglob("*"))
        if path.is_file() and ".statecore" not in path.relative_to(root).parts
    }


def backdate_heartbeats(path: Path) -> None:
    with sqlite3.connect(path) as db:
        db.execute("UPDATE statecore_services SET heartbeat_db_at = datetime(heartbeat_db_at, '-1 hour')")


def test_the_readme_prints_the_operating_commands():
    verbs = {command[2] for command in readme_commands()}
    assert {
        "run",
        "service-list",
        "backend-state",
        "disable",
        "enable",
        "purge",
        "service",
        "reset",
        "simulate",
        "serve",
    } <= verbs


def test_every_readme_command_works_from_the_root_and_leaves_the_tree_clean(tmp_path: Path):
    shutil.copytree(ROOT / "examples", tmp_path / "examples", ignore=shutil.ignore_patterns("__pycache__"))
    before = tree(tmp_path)
    ran = []
    for command in readme_commands():
        verb = command[2]
        if verb == "serve":
            continue
        if verb == "run":
            command = [*command, "--duration", "1.5"]
        if command[2:4] == ["service", "remove"] or verb == "reset":  # refused while alive: as if stopped an hour ago
            backdate_heartbeats(tmp_path / ".statecore" / "statecore.sqlite")
        result = subprocess.run([sys.executable, *command], cwd=tmp_path, capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, f"{' '.join(command)}:\n{result.stdout}\n{result.stderr}"
        ran.append(verb)
    assert ran[0] == "run" or "run" in ran  # the store the later commands read is the one run wrote
    assert tree(tmp_path) == before, "a README command wrote outside .statecore/"
    assert (tmp_path / ".statecore" / "statecore.sqlite").is_file()
    assert (tmp_path / ".statecore" / "notifications.jsonl").stat().st_size > 0
