"""`python -m workers.trainers.export_params [PATH]`: write what each run kind's TRL config accepts (its init
fields, their JSON types, the choices of enum fields, JSON defaults) from the installed TRL to
`app/runs/trainer_params.json`, which the API checks a run's params against without importing TRL.

Run it after changing the pinned TRL; tests/workers/test_trainer_params.py fails while the checked-in file
differs from what the installed TRL exports.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import math
import sys
import types
import typing
from enum import Enum
from pathlib import Path
from typing import Any

from app.runs.trainer_params import PARAMS_FILE, TRL_CONFIGS
from workers.trainers.param_names import trl_version
from workers.trainers.spec import ppo_available


def _json_types(annotation: Any) -> tuple[set[str], list[Any]]:
    """The JSON types a value of `annotation` may arrive as, and the choices of an enum or Literal in it."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        found: set[str] = set()
        choices: list[Any] = []
        for arg in typing.get_args(annotation):
            arg_types, arg_choices = _json_types(arg)
            found |= arg_types
            choices += arg_choices
        return found, choices
    if origin is typing.Literal:
        values = list(typing.get_args(annotation))
        names = {"null" if v is None else _scalar(type(v)) for v in values}
        return names, [v for v in values if isinstance(v, str)]
    if annotation is typing.Any:
        return {"null", "boolean", "integer", "number", "string", "array", "object"}, []
    if annotation is type(None):
        return {"null"}, []
    if origin in (list, tuple, set, frozenset) or annotation in (list, tuple, set, frozenset):
        return {"array"}, []
    if origin is dict or annotation is dict:
        return {"object"}, []
    if isinstance(annotation, type) and issubclass(annotation, Enum):
        return {"string"}, [str(member.value) for member in annotation]
    if isinstance(annotation, type):
        name = _scalar(annotation)
        return ({name} if name else set()), []
    return set(), []  # a Python object a JSON body cannot carry


def _scalar(kind: type) -> str:
    return {bool: "boolean", int: "integer", float: "number", str: "string"}.get(kind, "")


def _default(field: dataclasses.Field[Any]) -> tuple[bool, Any]:
    value = field.default
    if isinstance(value, Enum):
        value = value.value
    if value is None or isinstance(value, bool | int | str):
        return True, value
    if isinstance(value, float) and math.isfinite(value):
        return True, value
    return False, None


def _fields(config_class: type) -> dict[str, dict[str, Any]]:
    hints = typing.get_type_hints(config_class)
    out: dict[str, dict[str, Any]] = {}
    for field in dataclasses.fields(config_class):
        if not field.init:
            continue
        found, choices = _json_types(hints.get(field.name, field.type))
        entry: dict[str, Any] = {"types": sorted(found - {""})}
        if choices:
            entry["choices"] = sorted(set(choices))
        has_default, default = _default(field)
        if has_default:
            entry["default"] = default
        out[field.name] = entry
    return out


def export() -> dict[str, Any]:
    """What `trainer_params.json` holds for the installed TRL."""
    kinds = {
        kind: {"config": name, "fields": _fields(getattr(importlib.import_module(module), name))}
        for kind, (module, name) in TRL_CONFIGS.items()
    }
    return {"trl_version": trl_version(), "ppo_trainer": ppo_available(), "kinds": kinds}


def render(data: dict[str, Any]) -> str:
    """JSON with one field per line, so that a TRL upgrade reads as a short diff."""

    def one(value: Any) -> str:
        return json.dumps(value, sort_keys=True)

    lines = ["{", f' "ppo_trainer": {one(data["ppo_trainer"])},', f' "trl_version": {one(data["trl_version"])},']
    lines.append(' "kinds": {')
    for k, (kind, entry) in enumerate(sorted(data["kinds"].items())):
        lines.append(f'  {one(kind)}: {{"config": {one(entry["config"])}, "fields": {{')
        fields = sorted(entry["fields"].items())
        lines += [
            f"   {one(name)}: {one(f)}" + ("," if i < len(fields) - 1 else "") for i, (name, f) in enumerate(fields)
        ]
        lines.append("  }}" + ("," if k < len(data["kinds"]) - 1 else ""))
    lines += [" }", "}"]
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> int:
    target = Path(argv[0]) if argv else PARAMS_FILE
    target.write_text(render(export()), encoding="utf-8")
    print(f"wrote {target} (TRL {trl_version()})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
