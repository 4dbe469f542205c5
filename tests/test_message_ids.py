"""Message ids: uuid4 texts formatted a batch at a time, the same as formatting each draw."""

from __future__ import annotations

import random
import uuid

from statecore.records import uuid4_texts
from statecore.runtime import MESSAGE_ID_BATCH, MessageIds, RealRuntime, VirtualRuntime


def _one_by_one(seed: int, count: int) -> list[str]:
    """What the ids are defined as: one ``getrandbits(128)`` each, made a version 4 UUID."""
    draws = random.Random(seed)
    return [str(uuid.UUID(int=draws.getrandbits(128), version=4)) for _ in range(count)]


def test_a_batch_holds_the_texts_of_successive_128_bit_draws_last_first():
    texts = uuid4_texts(random.Random(7).getrandbits(128 * 40), 40)
    assert texts[::-1] == _one_by_one(7, 40)


def test_every_text_is_a_version_4_rfc_4122_uuid():
    for text in uuid4_texts(random.Random(3).getrandbits(128 * 64), 64):
        parsed = uuid.UUID(text)
        assert (parsed.version, parsed.variant, str(parsed)) == (4, uuid.RFC_4122, text)


def test_seeded_message_ids_across_batches_are_those_of_one_draw_each():
    """A replay's notifications are byte-identical: the ids do not depend on the batch size."""
    count = 2 * MESSAGE_ID_BATCH + 3
    ids = MessageIds(random.Random(11).getrandbits)
    assert [ids() for _ in range(count)] == _one_by_one(11, count)


def test_a_virtual_runtime_replays_its_ids_and_a_real_one_does_not_repeat():
    first, again = VirtualRuntime(seed=5), VirtualRuntime(seed=5)
    assert [first.message_id() for _ in range(3)] == [again.message_id() for _ in range(3)] == _one_by_one(5, 3)
    real = RealRuntime()
    drawn = [real.message_id() for _ in range(MESSAGE_ID_BATCH + 1)]
    assert len(set(drawn)) == len(drawn)
    assert all(uuid.UUID(text).version == 4 for text in drawn)
