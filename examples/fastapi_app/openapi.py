"""The OpenAPI document: FastAPI's, completed with what only the running service knows.

- password bounds from the core's `SecurityPolicy` (the domain checks them);
- the component schemas that field types refer to (time zones, metadata and its levels);
- no leftovers of FastAPI's default validation error schema (our error body replaces it);
- no `null` where a client cannot send one: query and header parameters are absent or a
  string, and an optional PATCH field's `default: null` is no value it may send.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from edu_domain.services import SecurityPolicy
from examples.fastapi_app.schemas.fields import COMPONENT_MARK, metadata_schemas, time_zones

_PASSWORD_MARK = "x-edu-password"  # noqa: S105 - a schema marker, not a secret


def install_openapi(app: FastAPI) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = build(app, _policy(app))
        return app.openapi_schema

    setattr(app, "openapi", openapi)  # noqa: B010 - FastAPI's documented way to customise it


def _policy(app: FastAPI) -> SecurityPolicy:
    core = getattr(app.state, "core", None)
    policy = getattr(getattr(core, "deps", None), "policy", None)
    return policy if isinstance(policy, SecurityPolicy) else SecurityPolicy()


def build(app: FastAPI, policy: SecurityPolicy) -> dict[str, Any]:
    spec = get_openapi(
        title=app.title,
        version=app.version,
        description=app.description,
        routes=app.routes,
        tags=app.openapi_tags,
    )
    schemas: dict[str, Any] = spec.setdefault("components", {}).setdefault("schemas", {})
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)
    schemas["TimeZone"] = {
        "type": "string",
        "enum": list(time_zones()),
        "description": "An IANA time zone name",
    }
    schemas.update(metadata_schemas())
    _walk(spec, lambda node: _complete(node, policy))
    for path in spec.get("paths", {}).values():
        for operation in path.values():
            for parameter in operation.get("parameters", ()):
                parameter["schema"] = _without_null(parameter["schema"])
    return spec


def _allows_null(schema: dict[str, Any]) -> bool:
    return schema.get("type") == "null" or any(_allows_null(s) for s in schema.get("anyOf", ()))


def _without_null(schema: dict[str, Any]) -> dict[str, Any]:
    branches = [s for s in schema.get("anyOf", ()) if s.get("type") != "null"]
    if not branches:
        return schema
    rest = {key: value for key, value in schema.items() if key != "anyOf"}
    if rest.get("default", 0) is None:
        del rest["default"]
    return {**branches[0], **rest} if len(branches) == 1 else {**rest, "anyOf": branches}


def _complete(node: dict[str, Any], policy: SecurityPolicy) -> None:
    if node.pop(_PASSWORD_MARK, False):
        node["minLength"] = policy.password_min_length
        node["maxLength"] = policy.password_max_length
    if "default" in node and node["default"] is None and not _allows_null(node):
        del node["default"]
    component = node.get(COMPONENT_MARK)
    if isinstance(component, str):
        node.clear()
        node["$ref"] = f"#/components/schemas/{component}"


def _walk(node: object, visit: Callable[[dict[str, Any]], None]) -> None:
    if isinstance(node, dict):
        visit(node)
        for value in node.values():
            _walk(value, visit)
    elif isinstance(node, list):
        for value in node:
            _walk(value, visit)
