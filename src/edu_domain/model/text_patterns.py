"""The text rules of `rules` as regular expressions, for schemas that publish them (JSON
Schema, pydantic). Only explicit character ranges: Python, Rust and ECMA-262 read them alike.
Built on first use (a walk over every code point) and cached."""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache

from edu_domain.model.rules import is_invisible, is_visible


def _ranges(member: Callable[[str], bool]) -> str:
    """The code points for which `member` holds, as the inside of a character class."""
    parts: list[str] = []
    start = -1
    for code in range(0x110001):
        inside = code < 0x110000 and not 0xD800 <= code <= 0xDFFF and member(chr(code))
        if inside and start < 0:
            start = code
        elif not inside and start >= 0:
            end = code - 1
            parts.append(_escape(start) if start == end else f"{_escape(start)}-{_escape(end)}")
            start = -1
    return "".join(parts)


def _escape(code: int) -> str:
    """BMP characters as \\uXXXX; astral ones literally (ECMA's \\u cannot name them)."""
    return f"\\u{code:04x}" if code <= 0xFFFF else chr(code)


def _is_line_control(ch: str) -> bool:
    return ch < " " or ch == "\x7f"


@lru_cache(maxsize=1)
def _classes() -> tuple[str, str, str]:
    """Invisible characters; visible ones; the blanks `str.strip()` removes that are no C0
    control or DEL."""
    return (
        _ranges(is_invisible),
        _ranges(is_visible),
        _ranges(lambda ch: ch.isspace() and not _is_line_control(ch)),
    )


def display_text_pattern() -> str:
    """`check_display_text` (within its length bounds) as a pattern."""
    invisible, visible, _ = _classes()
    return f"^[^{invisible}]*[{visible}][^{invisible}]*$"


def clean_text_pattern(*, multiline: bool = False, nonblank: bool = False) -> str:
    """`check_clean` as a pattern; `nonblank`: single-line text with something left after
    `str.strip()`."""
    if multiline:
        return r"^[^\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]*$"
    banned = r"\u0000-\u001f\u007f"
    if not nonblank:
        return f"^[^{banned}]*$"
    blank = _classes()[2]
    return f"^[^{banned}]*[^{banned}{blank}][^{banned}]*$"


__all__ = ["clean_text_pattern", "display_text_pattern"]
