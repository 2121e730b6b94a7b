"""Saving what a run produced: model folders that carry the run's configuration and library versions."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

PROVENANCE_FILE = "training_config.json"


def write_provenance(folder: Path, provenance: dict[str, Any]) -> None:
    """`training_config.json`: kind, params, effective TRL config, library versions (and step), written
    with sorted keys and no local paths, so the same run writes the same bytes."""
    folder.mkdir(parents=True, exist_ok=True)
    text = json.dumps(provenance, sort_keys=True, indent=2, allow_nan=False)
    (folder / PROVENANCE_FILE).write_text(text + "\n", encoding="utf-8")


def save_model_folder(model: Any, tokenizer: Any, folder: Path, provenance: dict[str, Any]) -> Path:
    """`save_pretrained` of the model and its tokenizer, and the provenance file beside them."""
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    write_provenance(folder, provenance)
    return folder


def read_provenance(folder: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((folder / PROVENANCE_FILE).read_text(encoding="utf-8"))
    return loaded
