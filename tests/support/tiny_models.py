"""Tiny models built from a config and a tokenizer trained here: no hub, loaded back through `from_pretrained`.

A tokenizer (byte-level BPE trained on the given texts), a two-layer Llama causal LM and a two-layer Llama
sequence classifier with one output (a reward model) that share it. Each is saved with `save_pretrained`
so that the code under test reads it the way it reads a registered model folder.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

BOS, EOS, PAD = "<|bos|>", "<|eos|>", "<|pad|>"
SIZES: dict[str, Any] = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2}


def build_tokenizer(directory: Path, texts: Iterable[str], *, vocab_size: int = 400) -> Path:
    """Train a byte-level BPE on `texts` and save it as a `PreTrainedTokenizerFast` with bos, eos and pad."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[PAD, BOS, EOS],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(list(texts), trainer=trainer)
    wrapped = PreTrainedTokenizerFast(  # type: ignore[no-untyped-call]
        tokenizer_object=tokenizer, bos_token=BOS, eos_token=EOS, pad_token=PAD, model_max_length=512
    )
    directory.mkdir(parents=True, exist_ok=True)
    wrapped.save_pretrained(directory)
    return directory


def _config(tokenizer_dir: Path, **extra: Any) -> Any:
    from transformers import AutoTokenizer, LlamaConfig

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    return LlamaConfig(
        vocab_size=len(tokenizer),
        max_position_embeddings=512,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=True,
        **SIZES,
        **extra,
    )


def _save(model: Any, tokenizer_dir: Path, directory: Path) -> Path:
    from transformers import AutoTokenizer

    directory.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(directory)
    AutoTokenizer.from_pretrained(tokenizer_dir).save_pretrained(directory)
    return directory


def build_tiny_lm(directory: Path, tokenizer_dir: Path, *, seed: int = 0) -> Path:
    """A randomly initialised two-layer Llama causal LM with the tokenizer beside it."""
    import torch
    from transformers import LlamaForCausalLM

    torch.manual_seed(seed)
    return _save(LlamaForCausalLM(_config(tokenizer_dir)), tokenizer_dir, directory)


def build_tiny_reward_model(directory: Path, tokenizer_dir: Path, *, seed: int = 0) -> Path:
    """A randomly initialised two-layer Llama sequence classifier with one label: a reward model."""
    import torch
    from transformers import LlamaForSequenceClassification

    torch.manual_seed(seed)
    model = LlamaForSequenceClassification(_config(tokenizer_dir, num_labels=1))  # type: ignore[no-untyped-call]
    return _save(model, tokenizer_dir, directory)
