"""Settings of the example service, read from the environment when the app is created."""

from __future__ import annotations

import os
from collections.abc import Mapping

from attrs import frozen

#: The bootstrap key used when EDU_BOOTSTRAP_KEY is unset. For local tries only: anyone who
#: knows it can create organizations, so every real deployment must set its own.
EXAMPLE_BOOTSTRAP_KEY = "edu-example-bootstrap-key"
DEFAULT_MAX_BODY_BYTES = 2 * 1024 * 1024


@frozen(kw_only=True)
class Settings:
    """What the HTTP layer needs to know; the core's own settings live with its wiring."""

    bootstrap_key: str = EXAMPLE_BOOTSTRAP_KEY
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES

    @property
    def uses_example_bootstrap_key(self) -> bool:
        return self.bootstrap_key == EXAMPLE_BOOTSTRAP_KEY

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """`EDU_BOOTSTRAP_KEY` and `EDU_MAX_BODY_BYTES`; a bad value fails at start-up."""
        env = os.environ if env is None else env
        key = env.get("EDU_BOOTSTRAP_KEY") or EXAMPLE_BOOTSTRAP_KEY
        raw_size = env.get("EDU_MAX_BODY_BYTES") or str(DEFAULT_MAX_BODY_BYTES)
        try:
            size = int(raw_size)
        except ValueError:
            raise ValueError(f"EDU_MAX_BODY_BYTES must be an integer, got {raw_size!r}") from None
        if size < 1024:
            raise ValueError(f"EDU_MAX_BODY_BYTES must be at least 1024, got {size}")
        return cls(bootstrap_key=key, max_body_bytes=size)
