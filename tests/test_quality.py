"""The gates a reviewer would run, run by the suite itself: ruff, mypy --strict, and the lock.

Each tool runs as ``sys.executable -m tool``, from the environment the suite runs in (uv.lock pins
their versions), so none of them can be missing, skipped, or a different release found on PATH.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run_tool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, timeout=300)


def test_ruff_reports_nothing():
    result = run_tool("ruff", "check", "--output-format", "concise", ".")
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_would_reformat_nothing():
    result = run_tool("ruff", "format", "--check", ".")
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_strict_reports_nothing():
    """pyproject.toml's [tool.mypy]: strict, over the whole package."""
    result = run_tool("mypy")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Success: no issues found" in result.stdout


def test_the_lock_agrees_with_pyproject():
    """A range changed in pyproject.toml without `uv lock` fails here, not on the next fresh machine."""
    result = run_tool("uv", "lock", "--check", "--offline")
    assert result.returncode == 0, result.stdout + result.stderr


ENGINE_MODULES = (
    "engine", "dispatch", "actions", "effects", "ledger", "jobs", "leases", "runtime", "registry", "machine",
)  # fmt: skip
"""The engine's stages: each short enough to hold in one's head (docs/decisions.md, engine stages)."""


def test_no_function_of_the_engines_stages_is_over_40_lines():
    long = []
    for name in ENGINE_MODULES:
        tree = ast.parse((ROOT / "statecore" / f"{name}.py").read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                lines = (node.end_lineno or node.lineno) - node.lineno + 1
                if lines > 40:
                    long.append(f"{name}.py:{node.lineno} {node.name} ({lines} lines)")
    assert long == []


def test_the_engine_front_stays_small_and_actions_never_reach_the_engine():
    engine = (ROOT / "statecore" / "engine.py").read_text(encoding="utf-8")
    assert len(engine.splitlines()) <= 300
    for stage in ("actions", "dispatch", "effects", "ledger", "jobs", "leases", "registry", "runtime"):
        source = (ROOT / "statecore" / f"{stage}.py").read_text(encoding="utf-8")
        assert "statecore.engine" not in source, f"{stage}.py imports the engine: the flow must stay one way"
