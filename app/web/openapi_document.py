"""/openapi.json: the HTTP API described (kept by hand next to the routes it describes)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from app.api.request_helpers import JSON

_ERROR = {"$ref": "#/components/schemas/Error"}


def _json(schema: dict[str, Any], description: str = "OK") -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _errors(*codes: int) -> dict[str, Any]:
    return {str(c): _json(_ERROR, "error") for c in codes}


_JOB_ID = {"name": "job_id", "in": "path", "required": True, "schema": {"type": "string", "format": "uuid"}}
_OBJ = {"type": "object"}

SPEC: dict[str, Any] = {
    "openapi": "3.0.3",
    "info": {"title": "Hume expression service", "version": "0.1.0"},
    "components": {
        "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        "schemas": {
            "Error": {
                "type": "object",
                "properties": {
                    "error": {
                        "type": "object",
                        "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
                        "required": ["code", "message"],
                    }
                },
                "required": ["error"],
            },
            "TtsRequest": {
                "type": "object",
                "required": ["text"],
                "properties": {
                    "text": {"type": "string", "minLength": 1, "maxLength": 5000},
                    "description": {"type": "string", "maxLength": 1000},
                    "voice": {
                        "type": "object",
                        "description": "exactly one of id or name",
                        "properties": {
                            "id": {"type": "string"},
                            "name": {"type": "string"},
                            "provider": {"type": "string", "enum": ["HUME_AI", "CUSTOM_VOICE"],
                                         "default": "CUSTOM_VOICE"},
                        },
                    },
                    "speed": {"type": "number", "minimum": 0.5, "maximum": 2, "default": 1},
                    "format": {"type": "string", "enum": ["mp3", "wav", "pcm"], "default": "mp3"},
                    "stream": {"type": "boolean", "default": False},
                },
            },
            "SubmitJob": {
                "type": "object",
                "properties": {
                    "urls": {"type": "array", "items": {"type": "string", "format": "uri"}, "maxItems": 100},
                    "text": {"type": "array", "items": {"type": "string"}, "maxItems": 100},
                    "models": {"type": "object"},
                    "metadata": {"type": "object"},
                    "backend": {
                        "type": "string", "enum": ["batch", "v1"],
                        "description": "batch: Hume's batch API (or a compatible server); v1: Hume's v1 Expression"
                        " Measurement API, prosody and face only. Default: HUME_BACKEND.",
                    },
                },
            },
        },
    },
    "security": [{"bearer": []}],
    "paths": {
        "/v1/jobs": {
            "post": {
                "summary": "Submit media URLs or text for analysis",
                "parameters": [{"name": "Idempotency-Key", "in": "header", "schema": {"type": "string"}}],
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/SubmitJob"}}},
                },
                "responses": {"202": _json(_OBJ, "accepted"), "200": _json(_OBJ, "idempotent replay"),
                              **_errors(401, 403, 409, 413, 422)},
            },
            "get": {
                "summary": "List jobs, newest first",
                "parameters": [
                    {"name": n, "in": "query", "schema": {"type": "string"}}
                    for n in ("status", "kind", "hume_id", "cursor", "created_after", "created_before", "metadata")
                ]
                + [{"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 500}}],
                "responses": {"200": _json(_OBJ), **_errors(401, 403, 422)},
            },
        },
        "/v1/jobs/{job_id}": {
            "get": {"parameters": [_JOB_ID], "responses": {"200": _json(_OBJ), **_errors(401, 403, 404)}}
        },
        "/v1/jobs/{job_id}/summary": {
            "get": {"parameters": [_JOB_ID], "responses": {"200": _json(_OBJ), **_errors(401, 403, 404)}}
        },
        "/v1/jobs/{job_id}/timeline": {
            "get": {
                "parameters": [
                    _JOB_ID,
                    {"name": "model", "in": "query", "required": True, "schema": {"type": "string"}},
                    {"name": "emotion", "in": "query", "required": True, "schema": {"type": "string"}},
                    {"name": "bucket", "in": "query", "schema": {"type": "number"}},
                    {"name": "per_group", "in": "query", "schema": {"type": "boolean"}},
                ],
                "responses": {"200": _json(_OBJ), **_errors(401, 403, 404, 422)},
            }
        },
        "/v1/jobs/{job_id}/predictions": {
            "get": {
                "parameters": [
                    _JOB_ID,
                    *[{"name": n, "in": "query", "schema": {"type": "string"}} for n in ("model", "group", "cursor")],
                    {"name": "source", "in": "query", "schema": {"type": "integer"}},
                    {"name": "from", "in": "query", "schema": {"type": "number"}},
                    {"name": "to", "in": "query", "schema": {"type": "number"}},
                    {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 5000}},
                ],
                "responses": {"200": _json(_OBJ), **_errors(401, 403, 404, 422)},
            }
        },
        "/v1/jobs/{job_id}/predictions.csv": {
            "get": {
                "summary": "A job's predictions as CSV, one column per emotion (scope: read; streamed)",
                "parameters": [
                    _JOB_ID,
                    *[{"name": n, "in": "query", "schema": {"type": "string"}} for n in ("model", "group")],
                    {"name": "source", "in": "query", "schema": {"type": "integer"}},
                    {"name": "from", "in": "query", "schema": {"type": "number"}},
                    {"name": "to", "in": "query", "schema": {"type": "number"}},
                ],
                "responses": {"200": {"description": "CSV", "content": {"text/csv": {"schema": {"type": "string"}}}},
                              **_errors(401, 403, 404, 422)},
            }
        },
        "/v1/emotions/top": {
            "get": {
                "summary": "Across jobs: the sources where an emotion is strongest (scope: read)",
                "parameters": [
                    {"name": "model", "in": "query", "required": True, "schema": {"type": "string"}},
                    {"name": "emotion", "in": "query", "required": True, "schema": {"type": "string"}},
                    {"name": "by", "in": "query", "schema": {"type": "string", "enum": ["mean", "max"]}},
                    {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 500}},
                    {"name": "created_after", "in": "query", "schema": {"type": "string", "format": "date-time"}},
                    {"name": "created_before", "in": "query", "schema": {"type": "string", "format": "date-time"}},
                    {"name": "metadata", "in": "query", "description": "JSON object the job's metadata contains",
                     "schema": {"type": "string"}},
                ],
                "responses": {"200": _json(_OBJ), **_errors(401, 403, 422)},
            }
        },
        "/v1/webhooks/hume/batch": {
            "post": {
                "security": [],
                "summary": "Hume's batch job callback (authenticated by the per-job token in the URL)",
                "parameters": [
                    {"name": "job_id", "in": "query", "schema": {"type": "string"}},
                    {"name": "token", "in": "query", "schema": {"type": "string"}},
                ],
                "requestBody": {"content": {"application/json": {"schema": _OBJ}}},
                "responses": {"202": _json(_OBJ), "200": _json(_OBJ), **_errors(400, 401, 404, 413, 503)},
            }
        },
        "/v1/webhooks/hume/evi": {
            "post": {
                "security": [],
                "summary": "Hume's EVI webhooks (chat_started, chat_ended, tool_call), verified by HMAC-SHA256 over"
                           " body + '.' + timestamp; an ended chat becomes an evi_chat job with prosody predictions",
                "parameters": [
                    {"name": "X-Hume-AI-Webhook-Signature", "in": "header", "required": True,
                     "schema": {"type": "string"}, "description": "hex HMAC-SHA256 with HUME_WEBHOOK_SIGNING_KEY"},
                    {"name": "X-Hume-AI-Webhook-Timestamp", "in": "header", "required": True,
                     "schema": {"type": "string"}, "description": "Unix seconds; within HUME_WEBHOOK_TOLERANCE_S"},
                ],
                "requestBody": {"content": {"application/json": {"schema": _OBJ}}},
                "responses": {
                    "202": _json(_OBJ, "stored and queued"),
                    "200": _json(_OBJ, "a replay: already stored, nothing done"),
                    **_errors(401, 413, 422, 503),
                },
            }
        },
        "/api/hume/auth": {
            "get": {
                "summary": "A Hume access token for a browser frontend (scope: token); cached until near expiry",
                "responses": {
                    "200": _json({"type": "object", "properties": {"accessToken": {"type": "string"},
                                                                   "expiresIn": {"type": "integer"}}}),
                    **_errors(401, 403, 502, 503),
                },
            }
        },
        "/v1/tts": {
            "post": {
                "summary": "Text to speech through Hume, cached in Postgres (scope: tts)",
                "parameters": [{"name": "format", "in": "query", "schema": {"type": "string", "enum": ["json"]},
                                "description": "json: Hume's JSON (generations with base64 audio) instead of bytes"}],
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/TtsRequest"}}},
                },
                "responses": {
                    "200": {
                        "description": "audio bytes (chunked when stream is true); header X-Cache: hit or miss",
                        "headers": {"X-Cache": {"schema": {"type": "string", "enum": ["hit", "miss"]}}},
                        "content": {t: {"schema": {"type": "string", "format": "binary"}}
                                    for t in ("audio/mpeg", "audio/wav", "audio/pcm")}
                        | {"application/json": {"schema": _OBJ}},
                    },
                    **_errors(401, 403, 413, 422, 502, 503),
                },
            }
        },
        "/v1/tts/cache/stats": {"get": {"summary": "TTS cache size, bound and hit counts (scope: tts)",
                                        "responses": {"200": _json(_OBJ), **_errors(401, 403)}}},
        "/v1/admin/events": {
            "get": {
                "summary": "Stored webhook events, newest first (scope: admin); state=dead lists what needs a replay",
                "parameters": [
                    {"name": "state", "in": "query",
                     "schema": {"type": "string", "enum": ["received", "processing", "done", "dead", "ignored"]}},
                    {"name": "cursor", "in": "query", "schema": {"type": "string"}},
                    {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 500}},
                ],
                "responses": {"200": _json(_OBJ), **_errors(401, 403, 422)},
            }
        },
        "/v1/admin/events/{event_id}/replay": {
            "post": {
                "summary": "Process a stored event again (scope: admin); a done event answers 409",
                "parameters": [{"name": "event_id", "in": "path", "required": True, "schema": {"type": "integer"}}],
                "responses": {"202": _json(_OBJ, "queued again"), **_errors(401, 403, 404, 409)},
            }
        },
        "/healthz": {"get": {"security": [], "responses": {"200": _json(_OBJ)}}},
        "/openapi.json": {"get": {"security": [], "summary": "This document", "responses": {"200": _json(_OBJ)}}},
        "/readyz": {"get": {"security": [], "responses": {"200": _json(_OBJ), "503": _json(_OBJ)}}},
        "/metrics": {"get": {"security": [], "summary": "Prometheus metrics",
                             "responses": {"200": {"description": "Prometheus text format",
                                                   "content": {"text/plain": {"schema": {"type": "string"}}}}}}},
    },
}  # fmt: skip

_ENDPOINT_ID = {"name": "endpoint_id", "in": "path", "required": True, "schema": {"type": "string", "format": "uuid"}}
_MESSAGE_ID = {"name": "message_id", "in": "path", "required": True, "schema": {"type": "integer"}}
_EVENTS = {
    "type": "array",
    "items": {"type": "string", "enum": ["job.completed", "job.failed", "job.rejected", "evi_chat.completed"]},
    "minItems": 1,
}
_ENDPOINT_FIELDS: dict[str, Any] = {
    "url": {"type": "string", "maxLength": 2048},
    "events": _EVENTS,
    "description": {"type": "string", "maxLength": 500},
}
_ENDPOINT_BODY: dict[str, Any] = {"type": "object", "properties": _ENDPOINT_FIELDS}
_W = "(scope: webhooks or admin)"
# Our own outbound webhooks (app/notifications): endpoints and the delivery log.
SPEC["paths"].update({
    "/v1/webhook-endpoints": {
        "post": {"summary": f"Register an endpoint; the answer holds its signing secret, shown once {_W}",
                 "requestBody": {"required": True, "content": {"application/json": {"schema": {
                     **_ENDPOINT_BODY, "required": ["url"]}}}},
                 "responses": {"201": _json(_OBJ), **_errors(401, 403, 413, 422)}},
        "get": {"summary": f"This key's endpoints {_W}", "responses": {"200": _json(_OBJ), **_errors(401, 403)}},
    },
    "/v1/webhook-endpoints/{endpoint_id}": {
        "get": {"parameters": [_ENDPOINT_ID], "responses": {"200": _json(_OBJ), **_errors(401, 403, 404)}},
        "patch": {"parameters": [_ENDPOINT_ID],
                  "requestBody": {"required": True, "content": {"application/json": {"schema": {
                      **_ENDPOINT_BODY, "properties": {**_ENDPOINT_FIELDS, "disabled": {"type": "boolean"}},
                  }}}},
                  "responses": {"200": _json(_OBJ), **_errors(401, 403, 404, 413, 422)}},
        "delete": {"parameters": [_ENDPOINT_ID],
                   "responses": {"204": {"description": "deleted"}, **_errors(401, 403, 404)}},
    },
    "/v1/webhook-endpoints/{endpoint_id}/rotate-secret": {
        "post": {"summary": "A new secret; the old one keeps signing alongside it for 24 h",
                 "parameters": [_ENDPOINT_ID],
                 "responses": {"200": _json(_OBJ), **_errors(401, 403, 404)}},
    },
    "/v1/webhook-endpoints/{endpoint_id}/test": {
        "post": {"summary": "Queue a ping to the endpoint", "parameters": [_ENDPOINT_ID],
                 "responses": {"202": _json(_OBJ), **_errors(401, 403, 404)}},
    },
    "/v1/webhook-endpoints/{endpoint_id}/messages": {
        "get": {"summary": "Messages sent to the endpoint, newest first",
                "parameters": [_ENDPOINT_ID, {"name": "limit", "in": "query",
                                              "schema": {"type": "integer", "minimum": 1, "maximum": 500}},
                               {"name": "before", "in": "query", "schema": {"type": "integer"}}],
                "responses": {"200": _json(_OBJ), **_errors(401, 403, 404, 422)}},
    },
    "/v1/webhook-endpoints/{endpoint_id}/messages/{message_id}/attempts": {
        "get": {"summary": "Every attempt of one message: status, response code, first 500 bytes, duration, error",
                "parameters": [_ENDPOINT_ID, _MESSAGE_ID], "responses": {"200": _json(_OBJ), **_errors(401, 403, 404)}},
    },
    "/v1/webhook-messages/{message_id}/retry": {
        "post": {"summary": "Send the message again now (409 while its endpoint is disabled)",
                 "parameters": [_MESSAGE_ID], "responses": {"202": _json(_OBJ), **_errors(401, 403, 404, 409)}},
    },
})  # fmt: skip


async def openapi_json(request: Request) -> Response:
    return JSON(SPEC)


routes = [Route("/openapi.json", openapi_json, methods=["GET"])]
