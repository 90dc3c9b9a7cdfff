"""What /openapi.json says about the event streams: each SSE event is an object whose `data` is JSON of a
documented schema (the OpenAPI 3.1 reading of `schema` under `text/event-stream`)."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from pydantic import TypeAdapter

REF = "#/components/schemas/{model}"

NATIVE_STREAM_EVENT: dict[str, Any] = {
    "type": "object", "required": ["event", "data"],
    "description": "One event: `event` names it, `data` is its JSON (a StreamEvent of the same `type`).",
    "properties": {
        "event": {"type": "string", "enum": ["sources", "draft", "answer", "error"]},
        "data": {"type": "string", "contentMediaType": "application/json",
                 "contentSchema": {"$ref": REF.format(model="StreamEvent")}},
    },
}

OPENAI_STREAM_EVENT: dict[str, Any] = {
    "type": "object", "required": ["data"],
    "description": "`data` is a chat.completion.chunk, an error object, or the final `[DONE]`.",
    "properties": {
        "data": {"anyOf": [
            {"type": "string", "const": "[DONE]"},
            {"type": "string", "contentMediaType": "application/json", "contentSchema": {"anyOf": [
                {"$ref": REF.format(model="ChatCompletionChunk")}, {"$ref": REF.format(model="ErrorResponse")}]}},
        ]},
    },
}


def add_components(app: FastAPI, models: dict[str, Any]) -> None:
    """Add the JSON schemas of `models` (name → type), and the models they refer to, to the app's OpenAPI
    components: types only streamed are not reachable from any route's response_model."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            spec = generate()
            components = spec.setdefault("components", {}).setdefault("schemas", {})
            for name, model in models.items():
                schema = TypeAdapter(model).json_schema(ref_template=REF, mode="serialization")
                for sub, definition in schema.pop("$defs", {}).items():
                    components.setdefault(sub, definition)
                components.setdefault(name, schema)
            optional_security(spec)
            app.openapi_schema = spec
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def optional_security(spec: dict[str, Any]) -> None:
    """The API is open until the first key exists, so a key is one way in, not the only one: each operation's
    security requirements gain the empty alternative `{}` (OpenAPI's "no credentials needed")."""
    for operations in spec.get("paths", {}).values():
        for operation in operations.values():
            security = operation.get("security") if isinstance(operation, dict) else None
            if security and {} not in security:
                security.append({})
