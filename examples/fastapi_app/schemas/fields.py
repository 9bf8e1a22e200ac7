"""Field types of the request models, generated from the domain's rules (`edu_domain.model.rules`).

Each type publishes in OpenAPI the constraint the API enforces, and the API enforces what it
publishes, so the schema is the contract: what it allows the domain accepts (never a 422 for a
value the schema allows), what it refuses is a 422. Where the domain's rule cannot be written as
a pattern exactly, the API takes a regular subset of it (noted per type);
`tests/e2e/test_openapi_contract.py` checks each type against its domain rule.
"""

from __future__ import annotations

import math
import zoneinfo
from functools import lru_cache
from typing import Annotated, Any

from pydantic import AfterValidator, Field, WithJsonSchema

from edu_domain import ValidationError
from edu_domain.model import rules, text_patterns
from edu_domain.query import MAX_CURSOR


def _full(pattern: str) -> str:
    return f"^{pattern}$"


def _any_case(pattern: str) -> str:
    """The pattern of a rule that lower-cases first, taking either case."""
    return pattern.replace("a-z", "A-Za-z")


_LOCAL = _any_case(rules.EMAIL_LOCAL_CHARS)
_LABEL = _any_case(rules.DOMAIN_LABEL_PATTERN)
#: `rules.check_email` as a pattern. A subset: local parts of at most 64 characters in up to
#: four dot-separated runs, and a top-level label that starts with a letter.
EMAIL_PATTERN = (
    rf"^(?:[{_LOCAL}]{{1,64}}|[{_LOCAL}]{{1,16}}(?:\.[{_LOCAL}]{{1,15}}){{1,3}})"
    rf"@(?:{_LABEL}\.)+[A-Za-z](?:[A-Za-z0-9-]{{0,61}}[A-Za-z0-9])?$"
)
USERNAME_PATTERN = _full(_any_case(rules.USERNAME_PATTERN))
SLUG_PATTERN = _full(rules.SLUG_PATTERN)
LOCALE_PATTERN = _full(rules.LOCALE_PATTERN)
#: `rules.check_tags` takes letters of any script; the API takes ASCII ones (a pattern cannot
#: name Unicode letters the same way in every regex engine).
TAG_PATTERN = r"^[A-Za-z0-9](?:[A-Za-z0-9_+#.-]*[A-Za-z0-9_+#])?$"
#: `rules.check_url` as a pattern. A subset: an ASCII host part without brackets.
URL_PATTERN = r"^https?://[A-Za-z0-9._~%!$&'()*+,;=:@-]+(?:[/?#][^\u0000-\u0020\u007f]*)?$"
CURSOR_PATTERN = r"^[A-Za-z0-9_-]+={0,2}$"
ORGANIZATION_SLUG_MAX = 63
LINE = text_patterns.clean_text_pattern()
LINES = text_patterns.clean_text_pattern(multiline=True)

Email = Annotated[
    str,
    Field(
        min_length=6,
        max_length=rules.EMAIL_MAX,
        pattern=EMAIL_PATTERN,
        description="An email address (the pattern is the exact rule: no `format`, whose "
        "readings differ between validators)",
        examples=["ada@springfield.example.org"],
    ),
]
Username = Annotated[
    str,
    Field(
        min_length=rules.USERNAME_MIN,
        max_length=rules.USERNAME_MAX,
        pattern=USERNAME_PATTERN,
        examples=["ada"],
    ),
]
#: Bounds come from the running core's `SecurityPolicy` (see `openapi.py`); the domain checks them.
Password = Annotated[
    str,
    Field(pattern=LINE, json_schema_extra={"format": "password", "x-edu-password": True}),
]
PersonName = Annotated[
    str,
    Field(
        min_length=1,
        max_length=rules.NAME_MAX,
        pattern=text_patterns.display_text_pattern(),
        examples=["Ada Lovelace"],
    ),
]
OrganizationName = Annotated[
    str,
    Field(
        min_length=1,
        max_length=rules.NAME_MAX,
        pattern=text_patterns.display_text_pattern(),
        examples=["Springfield Elementary"],
    ),
]
OrganizationSlug = Annotated[
    str,
    Field(
        min_length=1,
        max_length=ORGANIZATION_SLUG_MAX,
        pattern=SLUG_PATTERN,
        examples=["demo-school"],
    ),
]
Title = Annotated[
    str,
    Field(
        min_length=1,
        max_length=rules.TITLE_MAX,
        pattern=text_patterns.display_text_pattern(),
        examples=["Fractions for beginners"],
    ),
]
ContentSlug = Annotated[
    str,
    Field(
        min_length=1, max_length=rules.SLUG_MAX, pattern=SLUG_PATTERN, examples=["fractions-101"]
    ),
]
Body = Annotated[
    str,
    Field(
        max_length=rules.BODY_MAX,
        pattern=LINES,
        examples=["A fraction names a part of a whole: 1/2 is one of two equal parts."],
    ),
]
Bio = Annotated[
    str,
    Field(
        min_length=1,
        max_length=rules.BIO_MAX,
        pattern=LINES,
        examples=["Teaches maths and robotics."],
    ),
]
Skill = Annotated[
    str,
    Field(
        min_length=1,
        max_length=rules.SKILL_MAX,
        pattern=text_patterns.clean_text_pattern(nonblank=True),
        examples=["algebra"],
    ),
]
Tag = Annotated[
    str, Field(min_length=1, max_length=rules.TAG_MAX, pattern=TAG_PATTERN, examples=["maths"])
]
Url = Annotated[
    str,
    Field(
        min_length=8,
        max_length=rules.URL_MAX,
        pattern=URL_PATTERN,
        description="An http(s) URL",
        examples=["https://example.org/ada.png"],
    ),
]
Locale = Annotated[
    str,
    Field(min_length=2, max_length=rules.LOCALE_MAX, pattern=LOCALE_PATTERN, examples=["en"]),
]
Cursor = Annotated[
    str,
    Field(
        min_length=1,
        max_length=MAX_CURSOR,
        pattern=CURSOR_PATTERN,
        description="`next_cursor` of the previous page; a cursor of another query is a 400",
    ),
]
SearchText = Annotated[
    str, Field(min_length=1, max_length=200, pattern=LINE, description="Text in the title")
]


@lru_cache(maxsize=1)
def time_zones() -> tuple[str, ...]:
    """What `rules.check_timezone` accepts: the IANA names this machine knows, and UTC."""
    return tuple(sorted(zoneinfo.available_timezones() | {"UTC"}))


def _time_zone(value: str) -> str:
    if value not in time_zones():
        raise ValueError("must be an IANA time zone such as Europe/Berlin")
    return value


#: Schemas `openapi.py` replaces by a reference to the named component (pydantic cannot refer
#: to a component it did not make).
COMPONENT_MARK = "x-edu-component"

TimeZone = Annotated[
    str,
    AfterValidator(_time_zone),
    WithJsonSchema({"type": "string", COMPONENT_MARK: "TimeZone"}),
]

# ------------------------------------------------------------------------------ metadata
# `rules.check_metadata`: a JSON object nested at most METADATA_MAX_DEPTH deep, strings without
# control characters, numbers within 64-bit integers (the API bounds floats too, so the schema
# can say it), at most 64 KiB as JSON (the domain checks it; a schema cannot say it).

_INT64 = {"minimum": rules.INT64_MIN, "maximum": rules.INT64_MAX}


def metadata_schemas() -> dict[str, Any]:
    """The `Metadata` component and one component per nesting level below it, deepest last."""
    schemas: dict[str, Any] = {
        "Metadata": {
            "type": "object",
            "propertyNames": {"pattern": LINES},
            "additionalProperties": {"$ref": "#/components/schemas/MetadataValue2"},
            "description": f"Any JSON object, at most {rules.METADATA_MAX_DEPTH} levels deep "
            f"and {rules.METADATA_MAX_BYTES // 1024} KiB as JSON",
            "examples": [{"grade": 4, "duration_minutes": 45}],
        }
    }
    for depth in range(2, rules.METADATA_MAX_DEPTH + 1):
        inner: dict[str, Any] = (
            {"$ref": f"#/components/schemas/MetadataValue{depth + 1}"}
            if depth < rules.METADATA_MAX_DEPTH
            else {"not": {}}
        )
        # One schema per level, keywords applying by type (no anyOf: fewer branches to walk).
        schemas[f"MetadataValue{depth}"] = {
            "type": ["null", "boolean", "number", "string", "array", "object"],
            **_INT64,
            "pattern": LINES,
            "items": inner,
            "propertyNames": {"pattern": LINES},
            "additionalProperties": inner,
        }
    return schemas


def _within_int64(value: object) -> object:
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int | float):
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError("numbers must be finite")
        if not rules.INT64_MIN <= value <= rules.INT64_MAX:
            raise ValueError("numbers must lie within 64-bit integers")
        return value
    if isinstance(value, list):
        for item in value:
            _within_int64(item)
    elif isinstance(value, dict):
        for item in value.values():
            _within_int64(item)
    return value


def _metadata(value: dict[str, Any]) -> dict[str, Any]:
    """Checked here, before the route runs, so a bad value is a 422 whatever else is wrong."""
    _within_int64(value)
    try:
        rules.check_metadata("metadata", value)
    except ValidationError as error:
        raise ValueError(error.message) from None
    return value


Metadata = Annotated[
    dict[str, Any],
    AfterValidator(_metadata),
    WithJsonSchema({"type": "object", COMPONENT_MARK: "Metadata"}),
]
