"""Names and titles: no invisible or bidi control characters, never blank; and the published
patterns of the text rules accept exactly what the rules accept."""

from __future__ import annotations

import re
import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edu_domain import ValidationError
from edu_domain.model import EducationalContent, Organization, User, rules, uuid7
from edu_domain.model.rules import (
    NAME_MAX,
    TITLE_MAX,
    check_display_text,
    check_skills,
    check_text,
    is_invisible,
    is_visible,
    normalize_string_list,
    normalize_tag,
)
from edu_domain.model.text_patterns import clean_text_pattern, display_text_pattern

ORG = uuid7()
BIDI_CONTROLS = [chr(c) for c in (*range(0x202A, 0x202F), *range(0x2066, 0x206A))]
OTHER_INVISIBLES = ["\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", "\u00ad", "\U000e0041"]
OTHER_INVISIBLES += ["\u061c", "\u2028", "\u2029", "\u3164", "\x85"]
#: Default_Ignorable_Code_Point outside the format and control categories: marks and
#: unassigned code points a renderer draws as nothing.
OTHER_INVISIBLES += ["\ufe0f", "\ufe00", "\U000e0100", "\u034f", "\u17b4", "\u180b", "\ufff0"]
#: Unicode's Default_Ignorable_Code_Point (DerivedCoreProperties.txt, Unicode 14/15).
DEFAULT_IGNORABLE = {
    *(0x00AD, 0x034F, 0x061C, 0x3164, 0xFEFF, 0xFFA0),
    *range(0x115F, 0x1161),
    *range(0x17B4, 0x17B6),
    *range(0x180B, 0x1810),
    *range(0x200B, 0x2010),
    *range(0x202A, 0x202F),
    *range(0x2060, 0x2070),
    *range(0xFE00, 0xFE10),
    *range(0xFFF0, 0xFFF9),
    *range(0x1BCA0, 0x1BCA4),
    *range(0x1D173, 0x1D17B),
    *range(0xE0000, 0xE1000),
}
#: Text without an invisible character that still renders blank: spaces, marks alone, the
#: blank Braille pattern, private-use and unassigned code points.
BLANK_LOOKING = [
    " ",
    "\u3000",
    "\u00a0",
    "\u1680",
    "\u2800",
    "\u0301",
    "\u20dd",
    "\ue000",
    "\u0378",
]


def _content(title: object) -> EducationalContent:
    return EducationalContent(
        organization_id=ORG,
        title=title,  # type: ignore[arg-type]
        slug="s",
        author_id=uuid7(),
    )


def _user(full_name: object) -> User:
    return User(
        organization_id=ORG,
        email="a@example.org",
        username="abc",
        hashed_password="h",
        full_name=full_name,  # type: ignore[arg-type]
    )


def _organization(name: object) -> Organization:
    return Organization(name=name, slug="org")  # type: ignore[arg-type]


BUILDERS = {"title": _content, "full_name": _user, "name": _organization}


@pytest.mark.parametrize("field", sorted(BUILDERS))
@pytest.mark.parametrize("char", BIDI_CONTROLS + OTHER_INVISIBLES)
def test_names_and_titles_refuse_invisible_characters(field: str, char: str) -> None:
    with pytest.raises(ValidationError) as refused:
        BUILDERS[field](f"Report{char}txt")
    assert refused.value.field == field
    assert char not in refused.value.message


@pytest.mark.parametrize("field", sorted(BUILDERS))
@pytest.mark.parametrize("blank", [" ", "   ", "\u3000", " \u00a0 ", "\u2800\u2800", "\u0301 "])
def test_names_and_titles_refuse_blank_text(field: str, blank: str) -> None:
    with pytest.raises(ValidationError, match="blank"):
        BUILDERS[field](blank)


def test_renaming_is_checked_like_creating() -> None:
    content = _content("Fractions")
    with pytest.raises(ValidationError):
        content.title = "Fractions\u202e"
    assert content.title == "Fractions"


@pytest.mark.parametrize(
    "text", ["Ada Lovelace", "José Ñúñez", "محمد", "李小龍", "Fractions 101: ½ + ¼", " padded "]
)
def test_visible_text_in_any_script_is_accepted(text: str) -> None:
    assert _content(text).title == text
    assert _user(text).full_name == text


_visible = st.characters(exclude_categories=["Cs"]).filter(is_visible)
_anything_shown = st.characters(exclude_categories=["Cs"]).filter(lambda ch: not is_invisible(ch))


@given(st.text(_anything_shown, max_size=TITLE_MAX - 1), _visible, st.integers(min_value=0))
def test_every_text_with_a_visible_character_and_no_invisible_one_is_a_title(
    text: str, shown: str, where: int
) -> None:
    at = where % (len(text) + 1)
    title = text[:at] + shown + text[at:]
    assert check_display_text("title", title, max_len=TITLE_MAX) == title


@given(st.text(st.sampled_from(BLANK_LOOKING), min_size=1, max_size=20))
def test_text_that_renders_blank_is_refused(text: str) -> None:
    with pytest.raises(ValidationError, match="blank"):
        check_display_text("title", text, max_len=TITLE_MAX)


@given(
    st.text(max_size=20), st.sampled_from(BIDI_CONTROLS + OTHER_INVISIBLES), st.text(max_size=20)
)
def test_one_invisible_character_anywhere_refuses_the_name(
    before: str, char: str, after: str
) -> None:
    with pytest.raises(ValidationError):
        check_display_text("full_name", before + char + after, max_len=NAME_MAX)


@given(st.sampled_from(sorted(DEFAULT_IGNORABLE)))
def test_default_ignorable_code_points_refuse_a_visible_name(code: int) -> None:
    with pytest.raises(ValidationError, match="invisible"):
        check_display_text("full_name", f"Ada{chr(code)}Lovelace", max_len=NAME_MAX)


def test_the_invisible_set_is_the_format_and_control_categories_and_default_ignorables() -> None:
    for code in range(0x110000):
        ch = chr(code)
        hidden = code in DEFAULT_IGNORABLE or unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp")
        assert is_invisible(ch) == hidden, hex(code)


def test_the_visible_set_is_letters_numbers_punctuation_and_symbols() -> None:
    for code in range(0x110000):
        ch = chr(code)
        shown = unicodedata.category(ch)[0] in "LNPS" and code != 0x2800
        assert is_visible(ch) == (shown and code not in DEFAULT_IGNORABLE), hex(code)


def _accepts(check: object, text: str) -> bool:
    try:
        check(text)  # type: ignore[operator]
    except ValidationError:
        return False
    return True


def _display(text: str) -> bool:
    return _accepts(lambda t: check_display_text("title", t, max_len=10**6), text)


def _single_line(text: str) -> bool:
    return _accepts(lambda t: check_text("q", t, min_len=0, max_len=10**6), text)


def _body(text: str) -> bool:
    return _accepts(lambda t: check_text("b", t, min_len=0, max_len=10**6, multiline=True), text)


def _skill(text: str) -> bool:
    return _accepts(lambda t: check_skills("skills", normalize_string_list([t])), text)


_TRICKY = [" ", "\t", "\n", "\r", "\x00", "\x1f", "\x7f", "\x85", "\u00a0", "\u3000", "\u202e"]
_TRICKY += ["\u2066", "\u200d", "\ufeff", "\u2028", "\u3164", "\U000e0041", "a", "é", "字", "😀"]
_TRICKY += ["\ufe0f", "\U000e0100", "\u034f", "\u2800", "\u0301", "\ue000", "\u0378", "\U0001d173"]
_tricky = st.sampled_from(_TRICKY)
_texts = st.lists(st.one_of(_tricky, st.characters(exclude_categories=["Cs"])), max_size=12).map(
    "".join
)


@pytest.mark.parametrize(
    ("pattern", "accepts", "exact"),
    [
        (display_text_pattern(), _display, True),
        (clean_text_pattern(), _single_line, True),
        (clean_text_pattern(multiline=True), _body, True),
        (clean_text_pattern(nonblank=True), _skill, False),
    ],
    ids=["display", "line", "multiline", "nonblank-line"],
)
@given(text=_texts)
def test_published_patterns_agree_with_the_rules(
    pattern: str, accepts: object, exact: bool, text: str
) -> None:
    """The patterns are what schemas publish: what matches, the rule takes; and where the rule
    does not trim its input first, what the rule takes matches."""
    matches = re.fullmatch(pattern.removeprefix("^").removesuffix("$"), text) is not None
    taken = accepts(text)  # type: ignore[operator]
    assert taken == matches if exact else (taken or not matches)


@given(st.text(st.characters(categories=["L", "N"]), min_size=1, max_size=10))
def test_letters_and_digits_of_any_case_make_a_tag(word: str) -> None:
    tag = normalize_tag(word)
    assert rules.check_tags("tags", (tag,)) == (tag,)


def test_tag_errors_do_not_echo_the_tag() -> None:
    with pytest.raises(ValidationError) as refused:
        rules.check_tags("tags", ("<script>",))
    assert "<script>" not in refused.value.message


@pytest.mark.parametrize("url", ["http://[::1", "https://[oops/x"])
def test_malformed_urls_are_validation_errors(url: str) -> None:
    with pytest.raises(ValidationError):
        rules.check_url("avatar_url", url)
