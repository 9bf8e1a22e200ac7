"""UUIDv7 ids are RFC 9562 version 7, strictly increasing in a process, unique across processes."""

from __future__ import annotations

import itertools
import multiprocessing
import time
from unittest import mock
from uuid import UUID

import pytest

from edu_domain.model import uuid7
from edu_domain.model.ids import Uuid7Sequence, uuid7_millis
from edu_infra.system import Uuid7Generator


def _batch(n: int) -> list[str]:
    ids = [uuid7() for _ in range(n)]
    return [str(i) for i in ids]


def test_100000_consecutive_ids_are_strictly_increasing() -> None:
    generator = Uuid7Generator()
    ids = [generator.new_id() for _ in range(100_000)]
    out_of_order = sum(1 for a, b in itertools.pairwise(ids) if not a < b)
    assert out_of_order == 0
    # many share a millisecond, so the counter (not the clock) keeps them in order
    assert len({uuid7_millis(i) for i in ids}) < len(ids) // 10


def test_ids_are_rfc_9562_version_7_and_carry_the_time() -> None:
    before = time.time_ns() // 1_000_000
    value = uuid7()
    after = time.time_ns() // 1_000_000
    assert value.version == 7
    assert value.variant == "specified in RFC 4122"
    assert before <= uuid7_millis(value) <= after


def test_order_survives_a_clock_that_steps_back() -> None:
    sequence = Uuid7Sequence()
    with mock.patch("edu_domain.model.ids.time.time_ns", return_value=2_000_000_000_000_000):
        first = sequence.next()
    with mock.patch("edu_domain.model.ids.time.time_ns", return_value=1_000_000_000_000_000):
        later = [sequence.next() for _ in range(100)]
    assert all(a < b for a, b in zip([first, *later], later, strict=False))
    assert uuid7_millis(later[-1]) == uuid7_millis(first)


def test_an_exhausted_counter_moves_to_the_next_millisecond() -> None:
    sequence = Uuid7Sequence()
    with mock.patch("edu_domain.model.ids.time.time_ns", return_value=5_000_000_000):
        first = sequence.next()
        sequence._counter = (1 << 42) - 1
        second = sequence.next()
    assert first < second
    assert uuid7_millis(second) == uuid7_millis(first) + 1


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_ids_of_several_processes_never_collide(method: str) -> None:
    if method not in multiprocessing.get_all_start_methods():
        pytest.skip(f"start method {method} is not available here")
    uuid7()  # the parent has a sequence under way: forked children must not continue it
    context = multiprocessing.get_context(method)
    with context.Pool(4) as pool:
        batches = pool.map(_batch, [25_000] * 4)
    all_ids = [UUID(i) for batch in batches for i in batch]
    assert len(set(all_ids)) == len(all_ids) == 100_000
    for batch in batches:
        ids = [UUID(i) for i in batch]
        assert all(a < b for a, b in itertools.pairwise(ids))
