"""The benchmarks keep working: ``python -m bench --quick`` writes every section with positive numbers.

No wall-clock limit is asserted: CI machines differ, and the figures are for reading, not gating.
"""

from __future__ import annotations

import re
import socket
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SECTIONS = (
    "## Machine",
    "## Versions",
    "## Dispatch",
    "## Fleet",
    "## statecore run",
    "## Simulator",
    "## Store",
    "## Retention",
    "## Timers",
)


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> str:
    sys.path.insert(0, str(ROOT))
    try:
        from bench.__main__ import main
    finally:
        sys.path.remove(str(ROOT))
    out = tmp_path_factory.mktemp("bench") / "performance.md"
    assert main(["--quick", "--out", str(out)]) == 0
    return out.read_text(encoding="utf-8")


def test_quick_run_writes_every_section(report):
    for heading in SECTIONS:
        assert heading in report
    assert "Where the time of `Engine.fire` goes" in report


def test_every_figure_is_a_positive_median(report):
    rows = [line for line in report.splitlines() if line.startswith("| ") and not line.startswith("| measurement")]
    assert len(rows) >= 20
    for row in rows:
        median = row.split("|")[2].strip().replace(",", "")
        assert float(median) > 0, row


def test_ratios_are_against_a_baseline_of_the_same_run(report):
    rows = [line.split("|") for line in report.splitlines() if line.startswith("| engine.fire")]
    assert rows and all(float(row[5]) > 0 and "bare transitions" in row[6] for row in rows)


def test_machine_section_names_no_host(report):
    machine = report.split("## Machine", 1)[1].split("##", 1)[0]
    assert re.search(r"cores: \d+", machine) and "memory:" in machine and "CPU:" in machine
    assert socket.gethostname() not in report


def test_a_ratio_pairs_each_run_with_the_baseline_run_beside_it():
    """Turn 2 was busy for both sides: pairing turns ignores it, a ratio of medians would not."""
    sys.path.insert(0, str(ROOT))
    try:
        from bench.common import Section
    finally:
        sys.path.remove(str(ROOT))
    section = Section("t")
    figure = section.add("engine", [50.0, 10.0, 52.0], "events/s")
    baseline = section.add("bare", [100.0, 20.0, 90.0], "events/s")
    section.compare(figure, baseline)
    assert section.figures[0].ratio == pytest.approx(0.5)  # median of 0.5, 0.5, 0.578
    assert section.figures[0].value == 50.0 and section.figures[0].baseline == "bare"
