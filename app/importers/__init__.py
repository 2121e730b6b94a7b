"""Importers: annotation-tool exports and public preference datasets -> registry request specs.

Pure functions (no HTTP, no database): each reads one documented export shape and returns an
`ImportResult` holding the prompts of a prompt set, the items and metadata of an annotation batch, and
the list of what the source could not carry. `docs/importers.md` has the field mapping per format.
"""

from app.importers.argilla import from_argilla
from app.importers.hf_preference import from_hf_preference_jsonl
from app.importers.label_studio import from_label_studio
from app.importers.pandalm import from_pandalm
from app.importers.prd_vicuna80 import from_prd_vicuna80
from app.importers.spec import ImportFormatError, ImportResult, prompt_id_for

__all__ = [
    "ImportFormatError",
    "ImportResult",
    "from_argilla",
    "from_hf_preference_jsonl",
    "from_label_studio",
    "from_pandalm",
    "from_prd_vicuna80",
    "prompt_id_for",
]
