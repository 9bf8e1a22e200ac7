"""The fast text rules held to the old ones on inputs the hypothesis test rarely draws
(review 13b): astral characters, combining marks, bidi controls, NUL, lone surrogates,
long strings, quoted local parts and IDNs."""

from __future__ import annotations

import pytest

from edu_domain.model import rules
from tests.unit.test_fast_rules import old_clean, old_display, old_email, outcome

HOSTILE = [
    "\U0001f600",  # astral emoji
    "a\U0001f600b",
    "\U000e0020\U000e007f",  # tag characters only (invisible, astral)
    "e\u0301",  # combining acute after a letter
    "\u0301\u0301",  # marks alone: not visible
    "\u200f\u200e",  # bidi marks
    "abc\u2066def\u2069",  # isolates
    "\u061c",  # Arabic letter mark
    "\x00",
    "a\x00b",
    "\ud83d\ude00",  # a surrogate pair as two code points: lone surrogates in Python
    "\udfff",
    "x" * 100_000,
    "x" * 99_999 + "\u202e",
    " " * 5_000 + "x",
    "\u3164",  # Hangul filler: default ignorable letter
    "\U0001d173",  # musical symbol begin beam: ignorable
    "\u00a0\u2000\u3000",  # spaces that are not ASCII
    "\U00010000",  # first astral code point
    "\U0010ffff",  # last code point (unassigned, private use plane)
    "\x85",  # NEL: a C1 control
    "\u2028x",
]
EMAILS = [
    '"john doe"@example.org',
    '"a@b"@example.org',
    "user@bücher.de",
    "user@xn--bcher-kva.de",
    "üser@example.org",
    "user@example.org\x00",
    "user@example.\U0001f600",
    "a@b.c\u0301",
    "a" * 64 + "@" + "b" * 63 + "." + "c" * 63 + "." + "d" * 61,
    "a" * 64 + "@" + "b" * 63 + "." + "c" * 63 + "." + "d" * 62,
    "a@b.\u0661\u0662",  # Arabic-Indic digits: isdigit() is True, the pattern is ASCII
    "a@b.12",
    "a@b.1a",
    "a..b@c.org",
    ".a@c.org",
    "a@-b.org",
    "a@b-.org",
    "a@b.org.",
    "a@@b.org",
    "A@B.ORG",
    "a@b.org\r",
    "\ud800@b.org",
]


@pytest.mark.parametrize("value", HOSTILE)
@pytest.mark.parametrize("multiline", [False, True])
def test_check_clean_agrees_on_hostile_text(value: str, multiline: bool) -> None:
    fast = outcome(rules.check_clean, "f", value, multiline=multiline)
    assert fast == outcome(old_clean, "f", value, multiline=multiline)


@pytest.mark.parametrize("value", HOSTILE)
@pytest.mark.parametrize("max_len", [1, 200, 100_000])
def test_check_display_text_agrees_on_hostile_text(value: str, max_len: int) -> None:
    fast = outcome(rules.check_display_text, "name", value, max_len=max_len)
    assert fast == outcome(old_display, "name", value, max_len=max_len)


@pytest.mark.parametrize("value", EMAILS + HOSTILE)
def test_check_email_agrees_on_hostile_addresses(value: str) -> None:
    assert outcome(rules.check_email, "email", value) == outcome(old_email, "email", value)


def test_quoted_local_parts_and_unicode_domains_are_refused_with_a_reason() -> None:
    for value in ('"john doe"@example.org', "user@bücher.de", "a@b.\u0661\u0662"):
        verdict, message = outcome(rules.check_email, "email", value)
        assert verdict == "refused" and "email" in str(message)
