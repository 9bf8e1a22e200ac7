"""Which optional extra (`pip install 'edu-core[...]'`) brings which library.

A bare `pip install edu-core` has only attrs: the adapters' libraries come with extras. A
missing one must say which extra to install, not end in a bare ModuleNotFoundError.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from edu_infra.settings import ConfigurationError, Settings

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
    """Libraries of optional extras are not installed; the message names the extras."""

    def __init__(self, extras: Sequence[str], modules: Sequence[str], needed_by: str) -> None:
        self.extras = tuple(extras)
        self.modules = tuple(modules)
        names = ",".join(self.extras)
        missing = ", ".join(repr(m) for m in self.modules)
        super().__init__(
            f"{needed_by} needs the extra{'s' if len(self.extras) > 1 else ''} {names}:"
            f" pip install 'edu-core[{names}]' (not installed: {missing})"
        )


def missing_extra(error: ModuleNotFoundError, needed_by: str) -> MissingExtra | None:
    """The MissingExtra a ModuleNotFoundError stands for, or None if no extra brings it."""
    module = (error.name or "").split(".")[0]
    extra = EXTRA_OF_MODULE.get(module)
    return None if extra is None else MissingExtra([extra], [module], needed_by)


def extras_for(settings: Settings) -> list[str]:
    """The extras the container needs to build everything `settings` asks for."""
    needed = ["container", "security", "codec"]
    if settings.database_url.startswith("postgresql"):
        needed.append("postgres")
    elif not settings.uses_memory_database:
        needed.append("sqlite")
    if settings.redis_url is not None:
        needed.append("redis")
    if settings.smtp is not None:
        needed.append("smtp")
    if settings.otel_enabled:
        needed.append("otel")
    return needed


#: extra -> the top-level modules it must bring (for `check_extras`)
MODULES_OF_EXTRA: dict[str, tuple[str, ...]] = {
    "container": ("dependency_injector",),
    "security": ("pwdlib", "argon2"),
    "codec": ("orjson", "cattrs"),
    "sqlite": ("sqlalchemy", "alembic", "aiosqlite"),
    "postgres": ("sqlalchemy", "alembic", "asyncpg"),
    "redis": ("redis",),
    "smtp": ("aiosmtplib",),
    "otel": ("opentelemetry",),
}


def check_extras(extras: Sequence[str], needed_by: str) -> None:
    """MissingExtra naming every extra of `extras` whose libraries are not installed."""
    missing = {
        extra: [m for m in MODULES_OF_EXTRA.get(extra, ()) if _absent(m)] for extra in extras
    }
    missing = {extra: modules for extra, modules in missing.items() if modules}
    if missing:
        modules = list(dict.fromkeys(m for mods in missing.values() for m in mods))
        raise MissingExtra(list(missing), modules, needed_by)


def _absent(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is None
    except (ImportError, ValueError):
        return True


@contextmanager
def require_extra(extra: str, needed_by: str) -> Iterator[None]:
    """Turn an import failure inside the block into a MissingExtra naming `extra`."""
    try:
        yield
    except ModuleNotFoundError as error:
        module = (error.name or "?").split(".")[0]
        raise MissingExtra([EXTRA_OF_MODULE.get(module, extra)], [module], needed_by) from None


__all__ = [
    "EXTRA_OF_MODULE",
    "MODULES_OF_EXTRA",
    "MissingExtra",
    "check_extras",
    "extras_for",
    "missing_extra",
    "require_extra",
]
