"""Every JSON body the API takes or gives is a typed model in the OpenAPI document: no operation answers
or accepts a bare `object`, and a free-form map inside a typed model is one of the few listed below,
each a map by nature (names chosen by the user or by the kind) rather than a shape left undescribed."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from app.main import create_app
from app.state import AppState

# "<enclosing model's title>.<property>": where a value may be a free-form map (or any JSON value)
FREE_FORM = {
    # a project name -> the caller's role there
    "MeRead.roles": "project -> role",
    # the stored record of any kind: its fields are the kind's `<Kind>Create.spec` on the register route
    "RecordRead.spec": "the kind's spec",
    "RecordRead.derived": "what the server derived, by kind",
    "RecordRegistered.spec": "the kind's spec",
    "RecordRegistered.derived": "what the server derived, by kind",
    # user metadata of every kind
    **{
        f"{spec}.metadata": "user metadata"
        for spec in (
            "CriteriaSpec",
            "PromptSetSpec",
            "DemonstrationSetSpec",
            "AnnotationBatchSpec",
            "PreferenceDatasetSpec",
            "WaiverSpecBody",
            "BaseModelSpec",
            "RewardCheckpointSpec",
            "PolicyCheckpointSpecBody",
            "EvaluationSpec",
            "EvaluationCampaignSpec",
            "DeploymentSpec",
        )
    },
    # figures and settings named by the trainer or the evaluation
    "RewardCheckpointSpec.hyperparameters": "parameter -> value",
    "PolicyCheckpointSpecBody.hyperparameters": "parameter -> value",
    "PolicyCheckpointSpecBody.metrics": "metric -> value",
    "RewardMetrics.per_dimension": "criteria dimension -> accuracy",
    "EvaluationSpec.summary": "metric -> value",
    "EvaluationCampaignSpec.generation": "generation setting -> value, as the campaign's run used them",
    "EvaluationSpec.evaluator_names": "an annotation tool's user name -> the project principal it is",
    # table rows: the columns are the data's own (checked against the table limits, not a schema)
    "PromptSetSpec.prompts": "prompt rows",
    "DemonstrationSetSpec.demonstrations": "demonstration rows",
    "AnnotationBatchSpec.items": "annotation rows",
    # the changed part of a criteria spec, whatever its type
    "CriteriaChangeRead.before": "any JSON value",
    "CriteriaChangeRead.after": "any JSON value",
    # event payloads, one shape per event type
    "RecordEventRead.data": "by event type",
    "RevocationRead.data": "by event type",
    "RunEventRead.data": "by event type",
    # a run's kind decides its inputs (role -> reference) and params (checked by the trainer's schema)
    "RunCreate.inputs": "role -> reference",
    "RunCreate.params": "the kind's parameters",
    "RunRead.inputs": "role -> reference",
    "RunRead.params": "the kind's parameters",
    "RunRead.config": "the resolved trainer configuration",
    "RunRead.error": "the failure, by error code",
    # what an external trainer reports and reads
    "ExternalEvent.data": "by event type",
    "ExternalFinish.error": "the failure, by error code",
    "ExternalInputs.inputs": "role -> the input record with its files",
}
COMBINATORS = ("anyOf", "oneOf", "allOf")


def untyped(schema: dict[str, Any]) -> bool:
    """An object without properties, or a schema that says nothing of its value."""
    if schema.get("type") == "object":
        return not schema.get("properties")
    described = ("type", "$ref", "enum", "const", *COMBINATORS)
    return not any(key in schema for key in described)


class Walker:
    def __init__(self, document: dict[str, Any]) -> None:
        self.schemas: dict[str, Any] = document["components"]["schemas"]

    def resolve(self, schema: dict[str, Any]) -> dict[str, Any]:
        while "$ref" in schema:
            schema = self.schemas[schema["$ref"].rsplit("/", 1)[-1]]
        return schema

    def top_level_typed(self, schema: dict[str, Any]) -> bool:
        schema = self.resolve(schema)
        if schema.get("type") == "array":
            return self.top_level_typed(schema.get("items", {}))
        if any(key in schema for key in COMBINATORS):
            return all(self.top_level_typed(s) for key in COMBINATORS for s in schema.get(key, []))
        return schema.get("type") == "object" and bool(schema.get("properties"))

    def free_forms(self, schema: dict[str, Any], where: str, seen: frozenset[str] = frozenset()) -> Iterator[str]:
        """The places under `schema` holding an untyped value, named `<model title>.<property>`."""
        if "$ref" in schema:
            name = schema["$ref"].rsplit("/", 1)[-1]
            if name not in seen:
                yield from self.free_forms(self.schemas[name], where, seen | {name})
            return
        if untyped(schema):
            yield where
            return
        for key in COMBINATORS:
            for sub in schema.get(key, []):
                yield from self.free_forms(sub, where, seen)
        for key in ("items", "additionalProperties"):
            if isinstance(schema.get(key), dict):
                yield from self.free_forms(schema[key], where, seen)
        title = schema.get("title", "?")
        for name, sub in schema.get("properties", {}).items():
            yield from self.free_forms(sub, f"{title}.{name}", seen)


def json_bodies(document: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(`METHOD path status`, schema) of every 2xx JSON response and JSON request body."""
    for path, item in document["paths"].items():
        for method, operation in item.items():
            label = f"{method.upper()} {path}"
            for media, content in operation.get("requestBody", {}).get("content", {}).items():
                if media.endswith("json"):
                    yield f"{label} body", content.get("schema", {})
            for status, response in operation["responses"].items():
                for media, content in response.get("content", {}).items():
                    if status.startswith("2") and media.endswith("json"):
                        yield f"{label} {status}", content.get("schema", {})


@pytest.fixture(scope="module")
def document(sqlite_stack: AppState) -> dict[str, Any]:
    return create_app(state=sqlite_stack).openapi()


def test_every_json_body_is_a_typed_model(document: dict[str, Any]) -> None:
    walker = Walker(document)
    untyped_bodies = [label for label, schema in json_bodies(document) if not walker.top_level_typed(schema)]
    assert untyped_bodies == []


def test_free_form_maps_are_only_the_listed_ones(document: dict[str, Any]) -> None:
    walker = Walker(document)
    found = {place for label, schema in json_bodies(document) for place in walker.free_forms(schema, label)}
    assert sorted(found - FREE_FORM.keys()) == []
    # the list names nothing that is no longer in the document, so it cannot hide a new free-form field
    assert sorted(FREE_FORM.keys() - found) == []


def test_the_checks_catch_an_untyped_route(sqlite_stack: AppState) -> None:
    app = create_app(state=sqlite_stack)

    @app.get("/v1/loose")
    def loose() -> dict[str, Any]:
        return {}

    document = app.openapi()
    walker = Walker(document)
    loose_schema = document["paths"]["/v1/loose"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    assert not walker.top_level_typed(loose_schema)
    nested = {"title": "Outer", "type": "object", "properties": {"inner": {"type": "object"}}}
    assert list(walker.free_forms(nested, "x")) == ["Outer.inner"]
