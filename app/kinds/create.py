"""The request body of each kind's registration (`PolicyCreate`, `EvaluationCreate`, ...), built from
what the kind declares: a name (with the kind's default, if any), a version, its spec model, one field
per parent role and the top-level content fields it takes. The OpenAPI document shows them, and a
generated client builds them.

They describe the body and refuse what is not an object or carries an unknown field; the values are
not validated here (`SkipValidation`) but by the record pipeline (`app.records.service.register`), in
its order (table and folder limits before the spec's own rules), with its error codes. A parent
reference the kind requires is optional here for that reason: its absence is the pipeline's 422
`missing_reference`."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, SkipValidation, create_model

from app.kinds.base import KindDefinition


class RecordRef(BaseModel):
    """A reference to a record of the same project: `{"id"}`, or `{"name", "version"}` where version
    may be `latest` (resolved at registration and pinned)."""

    model_config = ConfigDict(extra="allow")

    id: str | None = None
    name: str | None = None
    version: str | int | None = None


def _spec_body_model(kind: KindDefinition) -> type[BaseModel]:
    """The spec as the body carries it: without the fields the kind takes at the top level."""
    spec = kind.spec_model
    if not kind.top_level_fields:
        return spec
    fields: dict[str, Any] = {
        key: (field.annotation, field) for key, field in spec.model_fields.items() if key not in kind.top_level_fields
    }
    return create_model(f"{spec.__name__}Body", __config__=ConfigDict(extra="forbid"), **fields)


def _unchecked(annotation: Any) -> Any:
    """`annotation` in the schema, its values passed on as sent (the pipeline checks them)."""
    skip: Any = SkipValidation  # a marker class (generic only to type checkers)
    return Annotated[annotation, skip()]


def _title(kind: KindDefinition) -> str:
    return "".join(part.capitalize() for part in kind.name.split("_"))


def create_model_of(kind: KindDefinition) -> type[BaseModel]:
    """The registration body of `kind` (a pydantic model named `<Kind>Create`)."""
    spec = _spec_body_model(kind)
    spec_required = any(field.is_required() for field in spec.model_fields.values())
    fields: dict[str, Any] = {
        "name": (_unchecked(str), ...) if kind.default_name is None else (_unchecked(str), kind.default_name),
        "version": (
            _unchecked(str | int | None),
            Field(None, description=f"{kind.version_scheme} version; omitted: the next integer version"),
        ),
        "spec": (_unchecked(spec), ...) if spec_required else (_unchecked(spec), Field(default_factory=spec)),
    }
    for role in kind.parent_roles:
        ref_type: Any = list[RecordRef] if role.many else RecordRef
        required = "required" if role.required else "optional"
        description = f"{required} reference(s) to a {' or '.join(role.kinds)} record"
        fields[role.role] = (_unchecked(ref_type | None), Field(None, description=description))
    for key in kind.top_level_fields:
        field = kind.spec_model.model_fields[key]
        fields[key] = (_unchecked(field.annotation), Field(description=field.description))
    model: type[BaseModel] = create_model(
        f"{_title(kind)}Create", __config__=ConfigDict(extra="forbid"), __module__=__name__, **fields
    )
    return model


def body_of(model: BaseModel) -> dict[str, Any]:
    """The JSON object the client sent, as the client sent it (what it left out stays out)."""
    return {key: getattr(model, key) for key in model.model_fields_set}
