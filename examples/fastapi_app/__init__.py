"""A FastAPI service that embeds edu-core: `create_app()` builds it, `main.app` serves it.

Run it with `uvicorn examples.fastapi_app.main:app` from the repository root.
"""

from examples.fastapi_app.app import create_app
from examples.fastapi_app.settings import Settings
from examples.fastapi_app.wiring import default_core

__all__ = ["Settings", "create_app", "default_core"]
