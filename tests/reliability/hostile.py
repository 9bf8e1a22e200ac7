"""Hostile values for the fuzzers: odd text, wrong types, absurd metadata, malicious queries."""

from __future__ import annotations

import uuid
from typing import Any

from hypothesis import strategies as st

from edu_domain.query import F, Query

LONG = ["a" * 33, "a" * 256, "b" * 2_049, "c" * 70_000]
NASTY_TEXT = [
    "",
    " ",
    "\t\n",
    "\x00",
    "a\x00b",
    "\ud800",
    "x\udfffy",
    "\x1b[31mred",
    "\x7f",
    "line\r\nbreak",
    "\u202eevil.exe",
    "\u200b",
    "\ufeffbom",
    "\uff41\uff44\uff4d\uff49\uff4e",  # fullwidth "admin"
    "\u0430dmin",  # Cyrillic a
    "e\u0301\u0301\u0301",
    "İstanbul",
    "\u212a",  # Kelvin sign, lower-cases to k
    "ß",
    "🙂🙂🙂",
    "\U0001d552\U0001d553\U0001d554",  # double-struck abc
    "' OR 1=1 --",
    "id; drop table users",
    "__class__",
    "__dict__",
    "password",
    "hashed_password",
    "token_hash",
    "organization_id",
    "%",
    "_",
    "\\",
    "*",
    "{tenant}:gen:user",
    "a@b.org",
    "admin",
    "UTC",
    "../../etc/passwd",
    "$argon2id$v=19$m=8,t=1,p=1$c2FsdA$aGFzaA",
]
ORDER_KEYS = [
    "id; drop table users",
    "__class__",
    "password",
    "hashed_password",
    "-token_hash",
    "-",
    "--created_at",
    "created_at desc",
    "metadata",
    "tags",
    "",
    " ",
    "-created_at",
    "email",
]
CURSORS = ["", "x", "e30", "W10", "eyJrIjoiIn0", "a" * 600, "\x00", "\ud800", "..", "-1"]

characters = st.one_of(
    st.characters(),
    st.characters(categories=["Cs"]),
    st.sampled_from("\x00\x01\x1b\x7f\u202e\u0301\u200b\ufeff"),
)
text = st.one_of(
    st.sampled_from(NASTY_TEXT),
    st.sampled_from(LONG),
    st.text(characters, max_size=24),
)


def _deep(depth: int, leaf: Any) -> Any:
    value = leaf
    for i in range(depth):
        value = {f"k{i}": value} if i % 2 else [value]
    return value


json_leaf = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**80), max_value=2**80),
    st.floats(),
    text,
)
metadata = st.one_of(
    st.dictionaries(text, json_leaf, max_size=4),
    st.integers(1, 40).map(lambda d: {"deep": _deep(d, 1)}),
    st.sampled_from([2_000, 20_000]).map(lambda n: {f"k{i}": "v" * 8 for i in range(n)}),
    st.just({"big": "x" * 70_000}),
    st.just({1: "int key"}),
    st.just({"nan": float("nan")}),
    st.just({"inf": float("inf")}),
    st.just({"set": {1, 2}}),
    st.just({"bytes": b"\x00\xff"}),
    st.just({"obj": object()}),
    st.just({"tuple": (1, 2)}),
    st.lists(json_leaf, max_size=3),
    json_leaf,
)
anything = st.one_of(
    text,
    json_leaf,
    st.lists(text, max_size=3),
    st.dictionaries(text, text, max_size=3),
    st.uuids(),
    st.binary(max_size=8),
    st.sampled_from([object(), ..., 1j, 10**30, -1, True]),
)
FIELDS = [
    "email",
    "username",
    "status",
    "role",
    "tags",
    "metadata",
    "created_at",
    "version",
    "organization_id",
    "id",
    "slug",
    "title",
    "failed_login_count",
]


@st.composite
def queries(draw: st.DrawFn) -> Any:
    """A Query (or something posing as one) that is unknown, malicious or out of bounds."""
    field = draw(st.one_of(st.sampled_from(FIELDS), st.sampled_from(NASTY_TEXT)))
    value = draw(anything)
    kind = draw(st.integers(0, 9))
    try:
        if kind == 0:
            return Query.where(**{field: value})
        if kind == 1:
            return Query().order_by(draw(st.sampled_from(ORDER_KEYS)))
        if kind == 2:
            skip = draw(st.sampled_from([-1, 0, 2**31, 2**63, 10**30, True, 1.5, "3"]))
            limit = draw(st.sampled_from([-5, 0, 1, 1_001, 2**31, 10**30, None, "20"]))
            return Query().page(skip, limit)  # type: ignore[arg-type]
        if kind == 3:
            return Query().after(draw(st.sampled_from(CURSORS) | text), 10)
        if kind == 4:
            op = draw(st.sampled_from(["eq", "ne", "lt", "in_", "startswith", "icontains"]))
            return Query.where(getattr(F(field), op)(value))
        if kind == 5:
            return Query.where(F(field).contains_all(value))
        if kind == 6:
            return Query.where(F("email").eq(value) | F(field).is_null(value))
        if kind == 7:
            return draw(st.sampled_from([{"email": "x"}, "email = 'x'", 42, [], Query]))
        if kind == 8:
            return Query.where(F("organization_id").eq(draw(st.uuids())))
        return Query().order_by("created_at").page(0, draw(st.integers(-3, 3)))
    except Exception as error:  # construction itself refused it: pass the error along
        return _Refused(error)


class _Refused:
    """A query that could not even be built; calling a use case with it re-raises."""

    def __init__(self, error: Exception) -> None:
        self.error = error

    def __repr__(self) -> str:
        return f"<refused: {type(self.error).__name__}>"


def unwrap(value: Any) -> Any:
    if isinstance(value, _Refused):
        raise value.error
    return value


RANDOM_ID = uuid.UUID(int=0x0190_0000_0000_7000_8000_0000_0000_0001)
