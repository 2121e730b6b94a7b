"""A model a run starts from (a base model, a policy or reward checkpoint) must be a folder the worker can
load with `from_pretrained`: checked on the record's file list before the run is queued, so a run never
fails in the worker for a missing file. Nothing here reads a blob or loads a model."""

from __future__ import annotations

from typing import Any

from app.core.errors import ValidationFailed
from app.records.models import Record

CONFIG = "config.json"
TOKENIZER_FAST = "tokenizer.json"
TOKENIZER_CONFIG = "tokenizer_config.json"
# the vocabulary files a tokenizer without `tokenizer.json` loads from (BPE, WordPiece, SentencePiece)
VOCABULARIES = ("vocab.json", "vocab.txt", "tokenizer.model", "spiece.model", "sentencepiece.bpe.model")


def _has_weights(names: set[str]) -> bool:
    """Safetensors (one file or shards) or PyTorch's pickle format (`pytorch_model.bin` or its shards)."""
    return any(n.endswith(".safetensors") or (n.startswith("pytorch_model") and n.endswith(".bin")) for n in names)


def missing_in_folder(files: list[dict[str, Any]]) -> list[str]:
    """What the folder lacks to be loaded by the worker, in words; empty when it is usable. Only files at the
    folder's top count: that is where `from_pretrained` looks."""
    names = {str(f.get("path")) for f in files if "/" not in str(f.get("path"))}
    missing = []
    if CONFIG not in names:
        missing.append(f"{CONFIG} (the model's configuration)")
    if TOKENIZER_FAST not in names and not (TOKENIZER_CONFIG in names and names & set(VOCABULARIES)):
        missing.append(
            f"a tokenizer ({TOKENIZER_FAST}, or {TOKENIZER_CONFIG} with a vocabulary: {', '.join(VOCABULARIES)})"
        )
    if not _has_weights(names):
        missing.append("weights (*.safetensors or pytorch_model*.bin)")
    return missing


def check_model_folder(role: str, record: Record) -> None:
    """Refuse (`validation_failed`, at `inputs.<role>`) a model record the worker could not load."""
    files = record.spec.get("files") or []
    what = f"inputs.{role} ({record.kind} {record.name} v{record.version})"
    if not files:
        raise ValidationFailed(
            f"{what} has no files in the registry (an external model is not downloaded by workers): "
            "register the model folder's files to train from it",
            errors=[{"loc": ["body", "inputs", role], "msg": "no model files"}],
        )
    missing = missing_in_folder(files)
    if missing:
        raise ValidationFailed(
            f"{what} is not a usable model folder: it lacks {'; '.join(missing)}",
            errors=[{"loc": ["body", "inputs", role], "msg": f"missing {m}"} for m in missing],
        )
