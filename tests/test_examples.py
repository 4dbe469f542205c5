"""The embedding example runs as a user would run it, on a real directory, in virtual time."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from statecore import MemorySink, VirtualClock

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def load_example(name: str):
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def test_embedded_service_waits_for_its_export_then_takes_work(tmp_path):
    example = load_example("embedded_service")
    export = tmp_path / "export"
    sink = MemorySink()
    service = example.VolumeService(str(export), clock=VirtualClock(), sink=sink)
    service.engine.start()
    service.engine.advance(10)
    with pytest.raises(RuntimeError, match=r"backend is (failed_recoverable|down)"):
        service.create_volume("vol-1")

    export.mkdir()
    service.engine.advance(20)
    assert service.create_volume("vol-1") == "vol-1 created on share@local"
    assert {row.host: row.lifecycle.value for row in service.engine.service_list()} == {
        "share@local": "up", "share": "up",
    }  # fmt: skip
    assert "volume.init.success" in sink.event_types() and "backup.init.success" in sink.event_types()


def test_embedded_service_refuses_a_relative_export_as_a_config_error():
    example = load_example("embedded_service")
    sink = MemorySink()
    service = example.VolumeService("relative/export", clock=VirtualClock(), sink=sink)
    service.engine.start()
    assert service.engine.service("share@local").lifecycle.value == "failed_permanent"
    assert sink.envelopes[0]["payload"]["error"]["type"] == "ConfigError"
