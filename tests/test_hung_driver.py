"""A driver whose set-up never returns, for an hour: the engine's own resources stay flat.

Virtual time runs attempts inline, so no thread is involved here (tests/test_realtime.py counts
threads in real time); what could grow is the engine's: armed jobs, deadlines, queued attempts.
"""

from __future__ import annotations

from support import Harness


def test_an_hour_of_a_hung_driver_keeps_the_engines_jobs_flat():
    h = Harness(backup_periodic_initialization=True, periodic_interval=10, backup_initialization_timeout=1,
                report_interval=10, service_down_time=60)  # fmt: skip
    h.add("bk1", "backup", h.driver("hang"))
    h.add("bk2", "backup", h.driver("ok"))
    h.engine.start()
    counts = []
    for _ in range(60):  # an hour, a minute at a time
        h.engine.advance(60)
        counts.append(len(h.engine.jobs()))
    failures = [e for e in h.sink.envelopes if e["event_type"] == "backup.init.failure"]
    assert len(failures) >= 300  # every 10 s (plus the 1 s timeout), for an hour
    assert {e["payload"]["error"]["type"] for e in failures} == {"InitTimeout"}
    assert max(counts) == min(counts) <= 6  # report, caps, retry, watchdog, purge...: no growth
    assert h.engine.service("bk2").lifecycle.value == "up"
