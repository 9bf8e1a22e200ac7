"""`passwords.offloads` decides exactly what `isinstance(h, OffloadingPasswordHasher)` decides."""

from __future__ import annotations

from typing import Any

import pytest

from edu_domain.ports import OffloadingPasswordHasher
from edu_domain.services.passwords import OFFLOADING_MEMBERS, offloads
from edu_infra.memory import FastHasher
from edu_infra.security import Argon2PasswordHasher


def _hasher(members: dict[str, Any]) -> object:
    return type("Hasher", (), members)()


def _method(_self: object, *_args: object) -> str:
    return "x"


CASES: list[Any] = [
    FastHasher(),
    Argon2PasswordHasher(),
    object(),
    _hasher(dict.fromkeys(OFFLOADING_MEMBERS, _method)),
    *(
        _hasher({n: _method for n in OFFLOADING_MEMBERS if n != missing})
        for missing in OFFLOADING_MEMBERS
    ),
    _hasher({**dict.fromkeys(OFFLOADING_MEMBERS, _method), "hash_async": None}),
]


@pytest.mark.parametrize("hasher", CASES)
def test_offloads_agrees_with_the_runtime_protocol(hasher: Any) -> None:
    assert offloads(hasher) == isinstance(hasher, OffloadingPasswordHasher)


def test_both_answers_occur() -> None:
    assert {offloads(h) for h in CASES} == {True, False}
