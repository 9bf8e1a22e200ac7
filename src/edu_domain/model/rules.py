"""Field rules shared by the entities: one place decides what a valid value is.

Each check raises `ValidationError` naming the field. The limits match the column sizes of
the SQL schema, so an input that passes here never fails in the database.
"""

from __future__ import annotations

import ipaddress
import json
import math
import re
import unicodedata
from collections.abc import Callable
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit

from edu_domain.errors import ValidationError

EMAIL_MAX = 254
EMAIL_LOCAL_MAX = 64
USERNAME_MIN, USERNAME_MAX = 3, 32
NAME_MAX = 200
SLUG_MAX = 120
TITLE_MAX = 200
BODY_MAX = 200_000
BIO_MAX = 2_000
SKILL_MAX, SKILLS_MAX = 50, 50
TAG_MAX, TAGS_MAX = 40, 20
URL_MAX = 2_048
TIMEZONE_MAX = 64
LOCALE_MAX = 35
USER_AGENT_MAX = 512
SECRET_HASH_MAX = 255
METADATA_MAX_BYTES = 64 * 1024
METADATA_MAX_DEPTH = 8
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1

#: The rules' regular expressions, public so that schemas (e.g. an HTTP API's) are generated
#: from them. Each is matched in full against the normalized value.
EMAIL_LOCAL_CHARS = "a-z0-9!#$%&'*+/=?^_`{|}~-"
EMAIL_LOCAL_PATTERN = rf"[{EMAIL_LOCAL_CHARS}]+(?:\.[{EMAIL_LOCAL_CHARS}]+)*"
DOMAIN_LABEL_PATTERN = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
USERNAME_PATTERN = r"[a-z0-9](?:[a-z0-9._-]*[a-z0-9])?"
SLUG_PATTERN = r"[a-z0-9]+(?:-[a-z0-9]+)*"
LOCALE_PATTERN = r"[A-Za-z]{2,3}(?:[-_][A-Za-z0-9]{1,8})*"
TIMEZONE_PATTERN = r"[A-Za-z0-9_+-]+(?:/[A-Za-z0-9_+-]+)*"

_EMAIL_LOCAL = re.compile(EMAIL_LOCAL_PATTERN)
_DOMAIN_LABEL = re.compile(DOMAIN_LABEL_PATTERN)
_USERNAME = re.compile(USERNAME_PATTERN)
_SLUG = re.compile(SLUG_PATTERN)
_TAG = re.compile(r"[^\W_](?:[\w+#.-]*[\w+#])?")
_LOCALE = re.compile(LOCALE_PATTERN)
_TIMEZONE = re.compile(TIMEZONE_PATTERN)
#: A whole valid address (ASCII only, so clean): group 1 is the local part.
_EMAIL = re.compile(rf"({EMAIL_LOCAL_PATTERN})@(?:{DOMAIN_LABEL_PATTERN}\.)+{DOMAIN_LABEL_PATTERN}")
#: C0 controls and DEL; multi-line text may also hold tab, line feed and carriage return.
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_CONTROL_MULTILINE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def check_text(
    field: str,
    value: object,
    *,
    min_len: int = 1,
    max_len: int,
    multiline: bool = False,
) -> str:
    """A str within bounds, encodable as UTF-8, with no NUL or stray control characters."""
    if not isinstance(value, str):
        raise ValidationError(field, "must be a string")
    if len(value) < min_len:
        raise ValidationError(
            field, "must not be empty" if min_len == 1 else f"too short (min {min_len})"
        )
    if len(value) > max_len:
        raise ValidationError(field, f"too long (max {max_len} characters)")
    check_clean(field, value, multiline=multiline)
    return value


def check_clean(field: str, value: str, *, multiline: bool = False) -> None:
    """Reject NUL (PostgreSQL text cannot hold it), lone surrogates and control characters."""
    if "\x00" in value:
        raise ValidationError(field, "must not contain NUL characters")
    if not value.isascii():  # only a non-ASCII string can hold a lone surrogate
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise ValidationError(field, "must be valid Unicode (no lone surrogates)") from None
    if (_CONTROL_MULTILINE if multiline else _CONTROL).search(value):
        raise ValidationError(field, "must not contain control characters")


#: Categories a reader cannot see: controls (C0, DEL, C1), format characters (Cf: the bidi
#: controls U+202A-U+202E and U+2066-U+2069, zero-width spaces and joiners, the soft hyphen,
#: word joiner, BOM, tag characters ...), and the line and paragraph separators.
_INVISIBLE_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp"})
#: Unicode's Default_Ignorable_Code_Point (DerivedCoreProperties.txt): characters a renderer
#: shows as nothing, some of them letters or marks (Hangul fillers, variation selectors, the
#: combining grapheme joiner), used to fake blank or look-alike names.
DEFAULT_IGNORABLE = (
    "00AD 034F 061C 115F-1160 17B4-17B5 180B-180F 200B-200F 202A-202E 2060-206F 3164 "
    "FE00-FE0F FEFF FFA0 FFF0-FFF8 1BCA0-1BCA3 1D173-1D17A E0000-E0FFF"
)
_DEFAULT_IGNORABLE = frozenset(
    chr(code)
    for first, _, last in (span.partition("-") for span in DEFAULT_IGNORABLE.split())
    for code in range(int(first, 16), int(last or first, 16) + 1)
)
#: Visible by category, yet drawn as an empty cell: the blank Braille pattern.
_BLANK_SYMBOLS = frozenset("\u2800")


def is_invisible(ch: str) -> bool:
    """A character that is never shown, or that reorders what is shown around it."""
    return ch in _DEFAULT_IGNORABLE or unicodedata.category(ch) in _INVISIBLE_CATEGORIES


def is_visible(ch: str) -> bool:
    """A character that puts ink on the page by itself: a letter, number, punctuation or
    symbol (not a space, mark, unassigned or private-use code point, nor a blank glyph)."""
    return (
        unicodedata.category(ch)[0] in "LNPS" and ch not in _BLANK_SYMBOLS and not is_invisible(ch)
    )


def check_display_text(field: str, value: object, *, max_len: int) -> str:
    """A name or title: text a reader sees as it is stored. No invisible or bidi control
    character (U+202E makes "gpj.exe" read "exe.jpg"), and not blank: at least one visible
    character, so spaces, marks or variation selectors alone are refused."""
    text = check_text(field, value, max_len=max_len)
    if text.isascii():  # U+0020-U+007E once check_text passed: never invisible, ink but " "
        visible = text.count(" ") != len(text)
    else:
        chars = set(text)  # each distinct character looked up once
        if any(is_invisible(ch) for ch in chars):
            raise ValidationError(
                field, "must not contain invisible or bidirectional control characters"
            )
        visible = any(is_visible(ch) for ch in chars)
    if not visible:
        raise ValidationError(field, "must not be blank (it needs a visible character)")
    return text


def optional(check: Callable[[str, object], Any]) -> Callable[[str, object], Any]:
    """Lift a check so that None passes."""

    def run(field: str, value: object) -> Any:
        return None if value is None else check(field, value)

    return run


def normalize_email(value: object) -> object:
    """Stored form of an email: trimmed and lower-cased, so uniqueness ignores case."""
    return value.strip().lower() if isinstance(value, str) else value


def check_email(field: str, value: object) -> str:
    if isinstance(value, str) and len(value) <= EMAIL_MAX:  # one match for a valid address
        found = _EMAIL.fullmatch(value)
        if (
            found
            and found.end(1) <= EMAIL_LOCAL_MAX
            and not value[value.rfind(".") + 1 :].isdigit()
        ):
            return value
    text = check_text(field, value, max_len=EMAIL_MAX)  # invalid: say why
    local, at, domain = text.rpartition("@")
    if not at or not local or not domain:
        raise ValidationError(field, "must be an email address like name@example.org")
    if len(local) > EMAIL_LOCAL_MAX:
        raise ValidationError(field, f"local part too long (max {EMAIL_LOCAL_MAX})")
    if not _EMAIL_LOCAL.fullmatch(local):
        raise ValidationError(field, "local part has characters an address may not have")
    labels = domain.split(".")
    if len(labels) < 2 or not all(_DOMAIN_LABEL.fullmatch(label) for label in labels):
        raise ValidationError(field, "domain is not a valid host name")
    if labels[-1].isdigit():
        raise ValidationError(field, "domain is not a valid host name")
    return text


def normalize_username(value: object) -> object:
    return value.strip().lower() if isinstance(value, str) else value


def check_username(field: str, value: object) -> str:
    text = check_text(field, value, min_len=USERNAME_MIN, max_len=USERNAME_MAX)
    if not _USERNAME.fullmatch(text):
        raise ValidationError(
            field,
            "use lower-case letters, digits, '.', '_' or '-', starting and ending alphanumeric",
        )
    return text


def check_slug(field: str, value: object, max_len: int = SLUG_MAX) -> str:
    text = check_text(field, value, max_len=max_len)
    if not _SLUG.fullmatch(text):
        raise ValidationError(field, "use lower-case letters and digits separated by single '-'")
    return text


def slugify(text: str, max_len: int = SLUG_MAX) -> str:
    """A slug from free text: accents dropped, non-alphanumerics collapsed to '-'."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")
    return slug[:max_len].rstrip("-")


def normalize_tag(tag: str) -> str:
    """Trimmed, lower-cased, inner spaces as '-'. A dotted capital I lower-cases to "i" plus a
    combining dot, which no tag may hold: it becomes a plain "i", as a Turkish reader expects."""
    return "-".join(tag.strip().lower().replace("i\u0307", "i").split())


#: What a list of strings may come as (a mapping, a string or a generator is no list).
_LISTS = (list, tuple, set, frozenset)


def _strings(value: object) -> tuple[object, ...] | None:
    """`value`'s items when it is a list of strings; None when it is no list; the items as
    they are (for the validator to refuse) when one is not a string (nested lists and
    objects are unhashable: they must not reach the de-duplication)."""
    if not isinstance(value, _LISTS):
        return None
    return tuple(value)


def normalize_tags(value: object) -> object:
    """Trimmed, lower-cased, inner spaces as '-', de-duplicated in first-seen order."""
    items = _strings(value)
    if items is None or not all(isinstance(tag, str) for tag in items):
        return value if items is None else items
    return tuple(dict.fromkeys(normalize_tag(tag) for tag in items))  # type: ignore[arg-type]


def check_tags(field: str, value: object) -> tuple[str, ...]:
    if not isinstance(value, tuple):
        raise ValidationError(field, "must be a list of strings")
    if len(value) > TAGS_MAX:
        raise ValidationError(field, f"too many tags (max {TAGS_MAX})")
    for tag in value:
        check_text(field, tag, max_len=TAG_MAX)
        if not _TAG.fullmatch(tag):
            raise ValidationError(field, "a tag may hold letters, digits and + # . - _ only")
    return value


def normalize_string_list(value: object) -> object:
    """Trimmed, de-duplicated in first-seen order (`normalize_tags` for what is no list)."""
    items = _strings(value)
    if items is None or not all(isinstance(item, str) for item in items):
        return value if items is None else items
    return tuple(dict.fromkeys(item.strip() for item in items))  # type: ignore[attr-defined]


def check_skills(field: str, value: object) -> tuple[str, ...]:
    if not isinstance(value, tuple):
        raise ValidationError(field, "must be a list of strings")
    if len(value) > SKILLS_MAX:
        raise ValidationError(field, f"too many entries (max {SKILLS_MAX})")
    for item in value:
        check_text(field, item, max_len=SKILL_MAX)
    return value


def check_url(field: str, value: object) -> str:
    text = check_text(field, value, max_len=URL_MAX)
    try:
        parts = urlsplit(text)
    except ValueError:  # e.g. an unclosed IPv6 bracket
        raise ValidationError(field, "must be an http(s) URL") from None
    if parts.scheme not in ("http", "https") or not parts.netloc or " " in text:
        raise ValidationError(field, "must be an http(s) URL")
    return text


@lru_cache(maxsize=1)
def _known_timezones() -> frozenset[str]:
    import zoneinfo

    return frozenset(zoneinfo.available_timezones())


def check_timezone(field: str, value: object) -> str:
    text = check_text(field, value, max_len=TIMEZONE_MAX)
    known = _known_timezones()
    if text != "UTC" and (not _TIMEZONE.fullmatch(text) or (known and text not in known)):
        raise ValidationError(field, "must be an IANA time zone such as Europe/Berlin")
    return text


def check_locale(field: str, value: object) -> str:
    text = check_text(field, value, max_len=LOCALE_MAX)
    if not _LOCALE.fullmatch(text):
        raise ValidationError(field, "must be a locale tag such as en or pt-BR")
    return text


def check_ip(field: str, value: object) -> str:
    text = check_text(field, value, max_len=45)
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        raise ValidationError(field, "must be an IPv4 or IPv6 address") from None


def truncate_user_agent(value: object) -> object:
    """User agents are client noise: keep the first 512 characters rather than refuse."""
    return value[:USER_AGENT_MAX] if isinstance(value, str) else value


def check_aware(field: str, value: object) -> datetime:
    """An aware datetime with a UTC form: every adapter stores the UTC instant, so one that
    leaves datetime's range in UTC (year 1 at +05:00, year 9999 at -05:00) is refused here,
    the same on every adapter, instead of failing in a driver."""
    if not isinstance(value, datetime) or value.tzinfo is None or value.utcoffset() is None:
        raise ValidationError(field, "must be a timezone-aware datetime")
    try:
        value.astimezone(UTC)
    except OverflowError:
        raise ValidationError(field, "has no UTC form (out of the datetime range in UTC)") from None
    return value


def check_metadata(field: str, value: object) -> dict[str, Any]:
    """A JSON object: string keys, finite numbers, 64-bit ints, bounded depth and size."""
    if not isinstance(value, dict):
        raise ValidationError(field, "must be a JSON object")
    _check_json(field, value, depth=1)
    encoded = json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    if len(encoded.encode("utf-8")) > METADATA_MAX_BYTES:
        raise ValidationError(field, f"too large (max {METADATA_MAX_BYTES} bytes as JSON)")
    return value


def _negative_zero(value: object) -> bool:
    """-0.0 is stored as 0.0 (PostgreSQL's jsonb has no negative zero): one value everywhere."""
    return isinstance(value, float) and value == 0.0 and math.copysign(1.0, value) < 0


def _check_json(field: str, value: object, depth: int) -> None:
    if depth > METADATA_MAX_DEPTH:
        raise ValidationError(field, f"nested too deeply (max depth {METADATA_MAX_DEPTH})")
    if value is None or isinstance(value, bool):
        return
    if isinstance(value, int):
        if not INT64_MIN <= value <= INT64_MAX:
            raise ValidationError(field, "integers must fit in 64 bits")
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValidationError(field, "numbers must be finite")
        return
    if isinstance(value, str):
        check_clean(field, value, multiline=True)
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise ValidationError(field, "object keys must be strings")
            check_clean(field, key, multiline=True)
            _check_json(field, item, depth + 1)
            if _negative_zero(item):
                value[key] = 0.0
        return
    if isinstance(value, list):
        for index, item in enumerate(value):
            _check_json(field, item, depth + 1)
            if _negative_zero(item):
                value[index] = 0.0
        return
    raise ValidationError(field, f"{type(value).__name__} is not a JSON value")
