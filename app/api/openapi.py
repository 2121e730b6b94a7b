"""The OpenAPI document's error responses: problem+json (RFC 9457), added by rule to every operation.

Every error the API answers is rendered by `app.api.errors` (or, for 413 and 500, by the middleware) as
`application/problem+json`; FastAPI documents none of them, only a 422 in its own validation shape,
which the handler never sends. Rather than each route listing its errors, which drifts as routes and
failure modes are added, `document_errors` goes through the finished document once and gives each
operation the statuses that what it declares can lead to: a credential, path or query parameters, a
body, a write method. It errs towards listing a status an operation rarely answers: a client has to
handle every status it can meet, and the schema fuzzing test fails on any status that is not listed.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from fastapi import FastAPI

from app.api.errors import PROBLEM

PROBLEM_SCHEMA = "Problem"
PROBLEM_REF = {"$ref": f"#/components/schemas/{PROBLEM_SCHEMA}"}
# FastAPI's validation error shapes, referenced only by the 422 responses this module replaces
FASTAPI_VALIDATION_SCHEMAS = ("HTTPValidationError", "ValidationError")
BODY_METHODS = frozenset({"post", "put", "patch"})
WRITE_METHODS = BODY_METHODS | {"delete"}

DESCRIPTIONS = {
    400: "Bad request: a body that cannot be parsed, or content that does not hash to the digest it claims",
    401: "Authentication required: no bearer token, or one that is unknown, expired or revoked",
    403: "Forbidden: the token's principal lacks the role this needs",
    404: "Not found: the project, record or other object named does not exist or is not visible to the caller",
    409: "Conflict with what is stored: a version that exists with other content, a rule or gate that blocks",
    413: "Payload too large: the body, a blob or a registration exceeds a documented limit",
    422: "Validation failed: a parameter or the body is not valid, or references something unusable",
    429: "Rate limited: too many writes with this token; retry after `Retry-After` seconds",
    503: "Unavailable: the database, blob store or broker cannot be reached; retry after `Retry-After` seconds",
}

_STRING_LIST = {"type": "array", "items": {"type": "string"}}

PROBLEM_DETAILS: dict[str, Any] = {
    "title": PROBLEM_SCHEMA,
    "description": (
        "An error (RFC 9457 problem details). `code` is stable and is what a client should branch on; "
        "`detail` is for people. Some codes add extension members, listed below; clients must ignore "
        "members they do not know."
    ),
    "type": "object",
    "required": ["type", "title", "status", "detail", "code"],
    "additionalProperties": True,
    "properties": {
        "type": {"type": "string", "description": "a URI naming the problem type; ends in `code`"},
        "title": {"type": "string", "description": "a short summary of the problem type"},
        "status": {"type": "integer", "minimum": 400, "maximum": 599, "description": "the HTTP status"},
        "detail": {"type": "string", "description": "what went wrong in this occurrence, in words"},
        "instance": {"type": "string", "description": "a URI of this occurrence, where there is one"},
        "code": {"type": "string", "description": "the stable error code, e.g. `version_conflict`"},
        "errors": {
            "type": "array",
            "description": "one item per problem found in the request",
            "items": {
                "type": "object",
                "additionalProperties": True,
                "properties": {
                    "loc": {"type": "array", "items": {"anyOf": [{"type": "string"}, {"type": "integer"}]}},
                    "msg": {"type": "string"},
                },
            },
        },
        "request_id": {"type": "string", "description": "internal_error: quote it when reporting the error"},
        "existing": {"type": "object", "description": "version_conflict: the stored record's id and digest"},
        "next_version": {"type": "integer", "description": "version_conflict: the version to register next"},
        "required_roles": {**_STRING_LIST, "description": "forbidden: the roles that would be allowed"},
        "role": {"type": "string", "description": "forbidden: the role the caller holds"},
        "expected": {"type": "string", "description": "digest_mismatch: the digest claimed"},
        "actual": {"type": "string", "description": "digest_mismatch: the digest of the bytes received"},
        "records": {**_STRING_LIST, "description": "ids of the records that caused the problem"},
        "revoked": {**_STRING_LIST, "description": "quarantined: the revoked records upstream"},
        "missing": {"type": "array", "description": "what is required but missing"},
        "present": {**_STRING_LIST, "description": "evaluation_evidence_missing: the evidence present"},
        "evaluation": {
            "type": "object",
            "description": "evaluation_evidence_insufficient: the evaluation already citing the evidence blob",
        },
        "limit": {"type": "integer", "description": "payload_too_large: the documented limit exceeded"},
        "retry_after": {"type": "integer", "description": "rate_limited: seconds until a write is allowed"},
    },
}

_RETRY_AFTER = {
    "description": "seconds to wait before retrying",
    "required": False,
    "schema": {"type": "integer", "minimum": 0},
}
HEADERS: dict[int, dict[str, Any]] = {
    401: {"WWW-Authenticate": {"description": "always `Bearer`", "required": True, "schema": {"type": "string"}}},
    429: {"Retry-After": _RETRY_AFTER},
    503: {"Retry-After": _RETRY_AFTER},
}


class RegistryAPI(FastAPI):
    """The application, whose OpenAPI document lists every operation's problem+json errors."""

    def openapi(self) -> dict[str, Any]:
        # FastAPI builds the document from the routes registered by now, caches it and rebuilds it when
        # routes are added; the errors are added once to each document it builds
        document = super().openapi()
        if PROBLEM_SCHEMA not in document.get("components", {}).get("schemas", {}):
            document_errors(document)
        return document


def error_statuses(method: str, operation: dict[str, Any]) -> set[int]:
    """The error statuses an operation can answer, from what it declares."""
    parameters = operation.get("parameters", [])
    where = {p["in"] for p in parameters}
    has_body = "requestBody" in operation or method in BODY_METHODS
    statuses = {503}  # any operation may meet a database or store outage
    if any(p["in"] == "header" and p["name"].lower() == "authorization" for p in parameters):
        statuses |= {401, 403}
    if where & {"path", "query"}:
        statuses.add(404)  # a path names an object; a query may name a project or a record
    if parameters or has_body:
        statuses.add(422)
    if has_body:
        statuses |= {400, 413}  # a raw body (a blob) has a digest to match and a size limit
    if method in WRITE_METHODS:
        statuses |= {409, 429}
    return statuses


def document_errors(document: dict[str, Any]) -> None:
    """Add the `Problem` schema and, to every operation, a problem+json response per error status it
    can answer; FastAPI's own 422 becomes a `Problem` too, as the handler renders it."""
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    schemas[PROBLEM_SCHEMA] = PROBLEM_DETAILS
    for path_item in document.get("paths", {}).values():
        for method, operation in path_item.items():
            responses = operation.setdefault("responses", {})
            # and the errors a route declares itself (`responses={401: {}}`), which FastAPI gives no content
            declared = {int(code) for code in responses if code.isdigit() and int(code) >= 400}
            for status in sorted(error_statuses(method, operation) | declared):
                response = responses.setdefault(str(status), {})
                # FastAPI's descriptions are the status phrase ("Unauthorized"); a route's own are kept
                if response.get("description") in (None, HTTPStatus(status).phrase, "Validation Error"):
                    response["description"] = DESCRIPTIONS.get(status, HTTPStatus(status).phrase)
                response["content"] = {PROBLEM: {"schema": PROBLEM_REF}}
                if status in HEADERS:
                    response["headers"] = dict(HEADERS[status])
    if not any(_references(document["paths"], name) for name in FASTAPI_VALIDATION_SCHEMAS):
        for name in FASTAPI_VALIDATION_SCHEMAS:
            schemas.pop(name, None)


def _references(node: Any, schema: str) -> bool:
    if isinstance(node, dict):
        if node.get("$ref") == f"#/components/schemas/{schema}":
            return True
        return any(_references(value, schema) for value in node.values())
    if isinstance(node, list):
        return any(_references(value, schema) for value in node)
    return False
