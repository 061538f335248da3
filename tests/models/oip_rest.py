"""What the Open Inference Protocol's REST specification requires of each answer.

Written from the published specification (kserve/open-inference-protocol,
specification/protocol/open_inference_rest.yaml and inference_rest.md) as JSON Schemas: the
required members and their types, nothing of ours added.
"""

from __future__ import annotations

from typing import Any

TENSOR_METADATA: dict[str, Any] = {
    "type": "object",
    "required": ["name", "datatype", "shape"],
    "properties": {
        "name": {"type": "string"},
        "datatype": {"type": "string"},
        "shape": {"type": "array", "items": {"type": "integer"}},
    },
}
TENSOR_DATA: dict[str, Any] = {
    "type": "array",
    "items": {"anyOf": [{"$ref": "#"}, {"type": ["number", "string", "boolean"]}]},
}

SERVER_METADATA: dict[str, Any] = {
    "type": "object",
    "required": ["name", "version", "extensions"],
    "properties": {
        "name": {"type": "string"},
        "version": {"type": "string"},
        "extensions": {"type": "array", "items": {"type": "string"}},
    },
}
MODEL_METADATA: dict[str, Any] = {
    "type": "object",
    "required": ["name", "platform"],
    "properties": {
        "name": {"type": "string"},
        "versions": {"type": "array", "items": {"type": "string"}},
        "platform": {"type": "string"},
        "inputs": {"type": "array", "items": TENSOR_METADATA},
        "outputs": {"type": "array", "items": TENSOR_METADATA},
    },
}
INFERENCE_RESPONSE: dict[str, Any] = {
    "type": "object",
    "required": ["model_name", "outputs"],
    "properties": {
        "model_name": {"type": "string"},
        "model_version": {"type": "string"},
        "id": {"type": "string"},
        "parameters": {"type": "object"},
        "outputs": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["name", "shape", "datatype", "data"],
                "properties": {
                    "name": {"type": "string"},
                    "shape": {"type": "array", "items": {"type": "integer"}},
                    "datatype": {"type": "string"},
                    "parameters": {"type": "object"},
                    "data": TENSOR_DATA,
                },
            },
        },
    },
}
ERROR: dict[str, Any] = {
    "type": "object",
    "required": ["error"],
    "properties": {"error": {"type": "string"}},
}
# Readiness answers carry no required body: the status says it (200 ready).
