"""Request and response models of the HTTP API (pydantic, for this example only).

The domain stays attrs: these models copy what a client may see from the entities
(`from_attributes=True`) and never include password or token hashes.
"""
