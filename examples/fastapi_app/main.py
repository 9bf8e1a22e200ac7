"""The ASGI entry point: `uvicorn examples.fastapi_app.main:app`.

Importing this module opens nothing: the core is built in the app's lifespan.
"""

from examples.fastapi_app.app import create_app

app = create_app()
