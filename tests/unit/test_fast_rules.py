"""The fast rules (`check_clean` by regex, `check_display_text` with its ASCII path,
`check_email` by one match, `to_enum` by a dict lookup) decide exactly what the versions
they replaced decided, with the same message. Those versions are kept here as the oracle."""

from __future__ import annotations

import re
from typing import Any

from hypothesis import example, given, settings
from hypothesis import strategies as st

from edu_domain import ValidationError
from edu_domain.model import UserRole, UserStatus, rules
from edu_domain.model.base import to_enum
from edu_domain.model.rules import (
    DOMAIN_LABEL_PATTERN,
    EMAIL_LOCAL_MAX,
    EMAIL_LOCAL_PATTERN,
    EMAIL_MAX,
    is_invisible,
    is_visible,
)


def old_clean(field: str, value: str, *, multiline: bool = False) -> None:
    if "\x00" in value:
        raise ValidationError(field, "must not contain NUL characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValidationError(field, "must be valid Unicode (no lone surrogates)") from None
    for ch in value:
        if ch < " " or ch == "\x7f":
            if multiline and ch in {"\t", "\n", "\r"}:
                continue
            raise ValidationError(field, "must not contain control characters")


def old_text(field: str, value: object, *, min_len: int = 1, max_len: int) -> str:
    if not isinstance(value, str):
        raise ValidationError(field, "must be a string")
    if len(value) < min_len:
        raise ValidationError(
            field, "must not be empty" if min_len == 1 else f"too short (min {min_len})"
        )
    if len(value) > max_len:
        raise ValidationError(field, f"too long (max {max_len} characters)")
    old_clean(field, value)
    return value


def old_display(field: str, value: object, *, max_len: int) -> str:
    text = old_text(field, value, max_len=max_len)
    if any(is_invisible(ch) for ch in text):
        raise ValidationError(
            field, "must not contain invisible or bidirectional control characters"
        )
    if not any(is_visible(ch) for ch in text):
        raise ValidationError(field, "must not be blank (it needs a visible character)")
    return text


_LOCAL = re.compile(EMAIL_LOCAL_PATTERN)
_LABEL = re.compile(DOMAIN_LABEL_PATTERN)


def old_email(field: str, value: object) -> str:
    text = old_text(field, value, max_len=EMAIL_MAX)
    local, at, domain = text.rpartition("@")
    if not at or not local or not domain:
        raise ValidationError(field, "must be an email address like name@example.org")
    if len(local) > EMAIL_LOCAL_MAX:
        raise ValidationError(field, f"local part too long (max {EMAIL_LOCAL_MAX})")
    if not _LOCAL.fullmatch(local):
        raise ValidationError(field, "local part has characters an address may not have")
    labels = domain.split(".")
    if len(labels) < 2 or not all(_LABEL.fullmatch(label) for label in labels):
        raise ValidationError(field, "domain is not a valid host name")
    if labels[-1].isdigit():
        raise ValidationError(field, "domain is not a valid host name")
    return text


def outcome(check: object, *args: object, **options: object) -> tuple[str, object]:
    try:
        return "ok", check(*args, **options)  # type: ignore[operator]
    except ValidationError as error:
        return "refused", str(error)


#: Characters the rules treat specially, mixed into otherwise random text.
SPECIAL = st.sampled_from(
    [" ", "\t", "\n", "\r", "\x00", "\x7f", "\x1f", "\x85", "\u00ad", "\u200b", "\u202e",
     "\u2028", "\u2800", "\u3000", "\u0301", "\ufe0f", "\ud800", "\U000e0041", "é", "@", "."]
)  # fmt: skip
TEXT = st.lists(
    st.one_of(st.characters(max_codepoint=0x7F), st.characters(), SPECIAL), max_size=40
).map("".join)
EMAILISH = st.lists(
    st.one_of(st.sampled_from("ab9-_.@+'É"), st.characters(max_codepoint=0x7F), SPECIAL),
    max_size=30,
).map("".join)


@settings(max_examples=500)
@given(TEXT, st.booleans())
@example("\ud800", False)
@example("a\tb", True)
@example("a\tb", False)
def test_check_clean_agrees_with_the_character_loop(value: str, multiline: bool) -> None:
    assert outcome(rules.check_clean, "f", value, multiline=multiline) == outcome(
        old_clean, "f", value, multiline=multiline
    )


@settings(max_examples=500)
@given(st.one_of(TEXT, st.none(), st.integers()), st.sampled_from([1, 5, 200]))
@example("   ", 200)
@example(" x ", 200)
@example("\u2800", 200)
@example("a\u202eb", 200)
def test_check_display_text_agrees_with_the_character_loop(value: object, max_len: int) -> None:
    fast = outcome(rules.check_display_text, "name", value, max_len=max_len)
    assert fast == outcome(old_display, "name", value, max_len=max_len)


@settings(max_examples=800)
@given(st.one_of(EMAILISH, st.emails().map(str.lower), st.none()))
@example("a@b.c")
@example("a@b.123")
@example("a@1.2.3a")
@example("a" * 64 + "@b.org")
@example("a" * 65 + "@b.org")
@example("a@b@c.org")
@example("a@" + "b" * 63 + ".org")
@example("x@" + ".".join(["a" * 60] * 4) + ".org")
@example("a.b@c.org\n")
def test_check_email_agrees_with_the_checks_one_by_one(value: object) -> None:
    assert outcome(rules.check_email, "email", value) == outcome(old_email, "email", value)


def old_to_enum(kind: type[Any], value: Any) -> Any:
    if isinstance(value, kind):
        return value
    try:
        return kind(value)
    except (ValueError, TypeError):
        return value


ENUM_VALUES = st.one_of(
    st.sampled_from([*UserRole, *UserStatus, *(m.value for m in UserRole), "STUDENT", ""]),
    st.text(max_size=12),
    st.integers(),
    st.none(),
    st.lists(st.text(max_size=3), max_size=2),
)


@given(st.sampled_from([UserRole, UserStatus]), ENUM_VALUES)
def test_to_enum_converts_as_the_enum_call_did(kind: type[Any], value: Any) -> None:
    fast = to_enum(kind)(value)
    old = old_to_enum(kind, value)
    assert fast is old or (fast == old and type(fast) is type(old))
