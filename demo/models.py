"""Small Llama models built from a config and a tokenizer trained here: nothing comes from a hub.

Used by `make demo` (tiny sizes, CPU), `bench/gpu_check.py` (a 91M-parameter model on a GPU) and
docs/guide.md, which builds a tiny one from the command line:

    python -m demo.models FOLDER

(the tokenizer is trained on the PandaLM slice in `demo/data`). The folder is written with
`save_pretrained`, so the registry's workers load it through `from_pretrained` exactly as they load a real
user's model folder.
"""

from __future__ import annotations

import argparse
import gzip
import json
from dataclasses import dataclass
from pathlib import Path

BOS, EOS, PAD = "<|bos|>", "<|eos|>", "<|pad|>"


@dataclass(frozen=True)
class LlamaSize:
    hidden: int
    layers: int
    heads: int
    vocab: int
    max_positions: int = 2048


TINY = LlamaSize(hidden=32, layers=2, heads=2, vocab=400, max_positions=512)


def build_llama(folder: Path, texts: list[str], size: LlamaSize, *, seed: int = 0) -> tuple[Path, int]:
    """A randomly initialised Llama causal LM and a byte-level BPE trained on `texts`; (folder, parameters)."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=size.vocab,
        special_tokens=[PAD, BOS, EOS],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    bpe.train_from_iterator(texts, trainer=trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=bpe, bos_token=BOS, eos_token=EOS, pad_token=PAD, model_max_length=size.max_positions
    )
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=size.hidden,
        intermediate_size=size.hidden * 8 // 3,
        num_hidden_layers=size.layers,
        num_attention_heads=size.heads,
        max_position_embeddings=size.max_positions,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=True,
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder, sum(p.numel() for p in model.parameters())


def pandalm_texts() -> list[str]:
    """Instructions and responses of the PandaLM slice shipped in `demo/data`."""
    path = Path(__file__).resolve().parent / "data" / "pandalm" / "testset-v1-first400.json.gz"
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        rows = json.load(fh)
    return [str(row[key]) for row in rows for key in ("instruction", "input", "response1", "response2") if row[key]]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Build a tiny random Llama model folder (CPU, a few seconds).")
    parser.add_argument("folder", type=Path)
    args = parser.parse_args(argv)
    folder, params = build_llama(args.folder, pandalm_texts(), TINY)
    print(f"{folder}: tiny Llama, {params} parameters")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
