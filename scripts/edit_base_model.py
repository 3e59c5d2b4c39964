#!/usr/bin/env python
"""Copy a demo base checkpoint with its language model's initial weights edited, for the text-drill probes.

The README's "missing skill" section asks why finding a word by its content stays on a plateau. Two of its variants
start the drills (scripts/probe_text_drills.py) from an edited copy of ``demo_out/base``:

- ``tie-qk``: in the chosen layers and key/value groups, the query and key projections of the nearly still rotary
  pairs (under 0.01 rad per position) become one shared random matrix, so a word's query already scores high against
  its own key before any training: the content match itself is given.
- ``scale``: every weight matrix of the language model (embeddings, projections, lm_head) multiplied by a factor: a
  larger or smaller initialisation. ``--only q_proj,k_proj`` scales only the matrices whose names hold one of the
  given parts: larger attention scores from the start, with the rest of the model as initialised.

The README's drills edit the plain base (the demo's before its query/key init grew 3x), which the first line rebuilds:

    tinyrs-tiny-model --preset small --attention_init_gain 1 --output_dir runs/plain_base
    python scripts/edit_base_model.py tie-qk runs/plain_base runs/base_tied --std 0.08 --layers 0,1,2,3 --kv_groups 0,1
    python scripts/edit_base_model.py scale runs/plain_base runs/base_x25 --factor 2.5
    python scripts/edit_base_model.py scale runs/plain_base runs/base_qk3 --factor 3 --only q_proj,k_proj
"""

from __future__ import annotations

import argparse
import logging
import shutil
import sys
from pathlib import Path

import torch


logger = logging.getLogger("edit_base_model")
STILL_BELOW = 0.01  # rad per position step
SAVED_OR_STAGE_FILES = ("config.json", "generation_config.json", "model.safetensors.index.json", "log.txt")


def still_dims(model) -> list[int]:
    """Head dimensions of the rotary pairs that turn by under STILL_BELOW per position (both halves of each pair)."""
    inv_freq = model.model.language_model.rotary_emb.inv_freq
    half = inv_freq.numel()
    pairs = [i for i in range(half) if float(inv_freq[i]) < STILL_BELOW]
    return pairs + [i + half for i in pairs]


def tie_query_key(model, layers: list[int], kv_groups: list[int], std: float, seed: int) -> None:
    """Give the query heads of each chosen key/value group the same projection as its key on the still dims."""
    config = model.config.text_config
    head_dim = config.hidden_size // config.num_attention_heads
    per_group = config.num_attention_heads // config.num_key_value_heads
    dims = still_dims(model)
    if not dims:
        raise ValueError(f"the model has no rotary pair turning under {STILL_BELOW} rad per position")
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for layer in layers:
            attention = model.model.language_model.layers[layer].self_attn
            for group in kv_groups:
                shared = torch.randn(len(dims), config.hidden_size, generator=generator) * std
                key_rows = [group * head_dim + d for d in dims]
                attention.k_proj.weight[key_rows] = shared
                for head in range(group * per_group, (group + 1) * per_group):
                    attention.q_proj.weight[[head * head_dim + d for d in dims]] = shared


def scale_language_model(model, factor: float, only: list[str] | None = None) -> int:
    """Multiply the weight matrices of the language model and the output head by `factor` (with `only`: those whose
    names hold one of its parts); returns how many were scaled."""
    scaled = 0
    with torch.no_grad():
        for name, param in model.named_parameters():
            if param.dim() == 2 and ("language_model" in name or name.startswith("lm_head")):
                if only is None or any(part in name for part in only):
                    param.mul_(factor)
                    scaled += 1
    if not scaled:
        raise ValueError(f"no language-model matrix name holds any of {only}")
    return scaled


def _ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    tie = sub.add_parser("tie-qk", help="share query and key projections on the still rotary pairs")
    scale = sub.add_parser("scale", help="scale the language model's weight matrices")
    for p in (tie, scale):
        p.add_argument("source", type=Path)
        p.add_argument("output_dir", type=Path)
    tie.add_argument("--std", type=float, default=0.08, help="std of the shared matrix (0.08: self-score about 5)")
    tie.add_argument("--layers", type=_ints, default=[0, 1, 2, 3])
    tie.add_argument("--kv_groups", type=_ints, default=[0, 1])
    tie.add_argument("--seed", type=int, default=1234)
    scale.add_argument("--factor", type=float, required=True)
    scale.add_argument("--only", type=lambda t: [x for x in t.split(",") if x], default=None, help="name parts")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    from transformers import AutoModelForImageTextToText

    if args.output_dir.resolve() == args.source.resolve():
        parser.error("output_dir must differ from source")
    model = AutoModelForImageTextToText.from_pretrained(args.source, dtype=torch.float32)
    if args.command == "tie-qk":
        tie_query_key(model, args.layers, args.kv_groups, args.std, args.seed)
    else:
        scale_language_model(model, args.factor, args.only)
    model.save_pretrained(args.output_dir)
    # Tokenizer, processor and chat template travel unchanged; weights and configs come from save_pretrained, and a
    # stage's log or DONE marker is not the copy's.
    for item in args.source.iterdir():
        if item.is_file() and item.suffix in (".json", ".jinja", ".txt") and item.name not in SAVED_OR_STAGE_FILES:
            shutil.copy(item, args.output_dir / item.name)
    logger.info("edited %s (%s) -> %s", args.source, args.command, args.output_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
