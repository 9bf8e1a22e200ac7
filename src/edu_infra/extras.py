"""Which optional extra (`pip install 'edu-core[...]'`) brings which library.

A bare `pip install edu-core` has only attrs: the adapters' libraries come with extras. A
missing one must say which extra to install, not end in a bare ModuleNotFoundError.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from edu_infra.settings import ConfigurationError

#: top-level module -> the extra that installs it
EXTRA_OF_MODULE: dict[str, str] = {
    "sqlalchemy": "sqlalchemy",
    "alembic": "sqlalchemy",
    "greenlet": "sqlalchemy",
    "asyncpg": "postgres",
    "aiosqlite": "sqlite",
    "redis": "redis",
    "hiredis": "redis",
    "orjson": "codec",
    "cattrs": "codec",
    "pwdlib": "security",
    "argon2": "security",
    "bcrypt": "security",
    "dependency_injector": "container",
    "aiosmtplib": "smtp",
    "opentelemetry": "otel",
    "fastapi": "fastapi",
    "uvicorn": "fastapi",
    "pydantic": "fastapi",
}


class MissingExtra(ConfigurationError):
    """A library of an optional extra is not installed; the message names the extra."""

    def __init__(self, extra: str, module: str, needed_by: str | None = None) -> None:
        self.extra = extra
        self.module = module
        why = f"{needed_by} needs" if needed_by else "this needs"
        super().__init__(
            f"{why} the '{extra}' extra: pip install 'edu-core[{extra}]'"
            f" (module {module!r} is not installed)"
        )


def missing_extra(error: ModuleNotFoundError, needed_by: str | None = None) -> MissingExtra | None:
    """The MissingExtra a ModuleNotFoundError stands for, or None if no extra brings it."""
    module = (error.name or "").split(".")[0]
    extra = EXTRA_OF_MODULE.get(module)
    return None if extra is None else MissingExtra(extra, module, needed_by)


@contextmanager
def require_extra(extra: str, needed_by: str) -> Iterator[None]:
    """Turn an import failure inside the block into a MissingExtra naming `extra`."""
    try:
        yield
    except ModuleNotFoundError as error:
        module = (error.name or "?").split(".")[0]
        raise MissingExtra(EXTRA_OF_MODULE.get(module, extra), module, needed_by) from None


__all__ = ["EXTRA_OF_MODULE", "MissingExtra", "missing_extra", "require_extra"]
