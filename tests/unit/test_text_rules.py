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
    clean_text_pattern,
    display_text_pattern,
    is_invisible,
    normalize_string_list,
    normalize_tag,
)

ORG = uuid7()
BIDI_CONTROLS = [chr(c) for c in (*range(0x202A, 0x202F), *range(0x2066, 0x206A))]
OTHER_INVISIBLES = ["\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", "\u00ad", "\U000e0041"]
OTHER_INVISIBLES += ["\u061c", "\u2028", "\u2029", "\u3164", "\x85"]


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
@pytest.mark.parametrize("blank", [" ", "   ", "\u3000", " \u00a0 "])
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


visible = st.characters(exclude_categories=["Cs", "Cc", "Cf", "Zl", "Zp"])


@given(st.text(visible, min_size=1, max_size=TITLE_MAX))
def test_every_visible_non_blank_text_is_a_title(text: str) -> None:
    if text.strip() and not any(ch in "\u115f\u1160\u3164\uffa0" for ch in text):
        assert check_display_text("title", text, max_len=TITLE_MAX) == text


@given(
    st.text(max_size=20), st.sampled_from(BIDI_CONTROLS + OTHER_INVISIBLES), st.text(max_size=20)
)
def test_one_invisible_character_anywhere_refuses_the_name(
    before: str, char: str, after: str
) -> None:
    with pytest.raises(ValidationError):
        check_display_text("full_name", before + char + after, max_len=NAME_MAX)


def test_the_invisible_set_is_the_format_and_control_categories() -> None:
    for code in range(0x110000):
        ch = chr(code)
        category = unicodedata.category(ch)
        if category in ("Cc", "Cf", "Zl", "Zp"):
            assert is_invisible(ch), hex(code)
        elif category != "Lo":
            assert not is_invisible(ch), hex(code)


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
