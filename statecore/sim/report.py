"""A simulation's result as text: a timeline for people, JSON lines for programs.

The JSON lines are the envelopes exactly as the engine emitted them, keys
sorted and no spaces, so two runs of one scenario and seed can be compared
byte for byte, and a consumer written against the notification bus can read
them unchanged.
"""

from __future__ import annotations

import json
from typing import Any

from statecore.sim.runner import Line, SimResult

MARKS = {"notification": " ", "observed": "~", "scenario": "*", "refused": "!"}


def compact_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def json_lines(result: SimResult) -> str:
    """One envelope a line, in order, then ``{"service_list": [...]}`` as the last line."""
    lines = [compact_json(envelope) for envelope in result.envelopes]
    lines.append(compact_json({"service_list": [row.model_dump(mode="json") for row in result.rows]}))
    return "\n".join(lines) + "\n"


def timeline_text(result: SimResult) -> str:
    """``t=+7.000s  node1@lvm  init.failure  initializing -> failed_permanent  (reason)``, a line each.

    Lines the scenario caused are marked ``*``, admin actions the table refused ``!``, and
    backend_state changes seen in the service list (not notifications) ``~``.
    """
    time_width = len(_time(result.duration))
    host_width = max((len(host) for host in result.binaries), default=0)
    what_width = max((len(line.what) for line in result.lines), default=0)
    header = (
        f"{result.name}: {len(result.binaries)} services, {result.duration:g} s of virtual time"
        f" from {result.start.isoformat()}"
    )
    body = [_line(line, time_width, host_width, what_width) for line in result.lines]
    return "\n".join([header, *body]) + "\n"


def _time(seconds: float) -> str:
    return f"t=+{seconds:.3f}s"


def _line(line: Line, time_width: int, host_width: int, what_width: int) -> str:
    change = f"{line.from_state} -> {line.to_state}  " if line.kind in ("notification", "observed") else ""
    return (
        f"{_time(line.at):<{time_width}} {MARKS[line.kind]}{line.host:<{host_width}}  {line.what:<{what_width}}  "
        f"{change}({line.detail})"
    )
