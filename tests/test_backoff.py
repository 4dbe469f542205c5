"""The backoff schedule as pure functions."""

from __future__ import annotations

import random

import pytest

from statecore.backoff import backoff_delay, base_delay, retry_rng


def test_base_delay_doubles_from_one_second_and_is_capped():
    assert [base_delay(k, 300) for k in range(1, 11)] == [1, 2, 4, 8, 16, 32, 64, 128, 256, 300]
    assert base_delay(1000, 300) == 300
    with pytest.raises(ValueError, match="start at 1"):
        base_delay(0, 300)


@pytest.mark.parametrize("jitter", ["full", "equal", "decorrelated"])
def test_jittered_delay_stays_within_its_bounds(jitter):
    rng = random.Random(1)
    previous = None
    for k in range(1, 40):
        delay = backoff_delay(k, 60, jitter, rng, previous)
        assert 0 <= delay <= 60
        if jitter == "equal":
            assert delay >= base_delay(k, 60) / 2
        previous = delay


def test_seeded_jitter_is_reproducible_per_service_and_retry():
    draws = [backoff_delay(3, 60, "full", retry_rng(7, "volume/a@b", 3), None) for _ in range(2)]
    assert draws[0] == draws[1]
    other = backoff_delay(3, 60, "full", retry_rng(7, "volume/c@d", 3), None)
    assert other != draws[0]
