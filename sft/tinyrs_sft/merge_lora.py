"""``tinyrs-sft merge-lora``: fold a LoRA adapter into its base and write a complete checkpoint folder.

    tinyrs-sft merge-lora --adapter_path output/lora_run --output_dir output/lora_run_merged

The base model is read from the adapter's ``adapter_config.json`` unless ``--base_model`` is given. The merge runs
in float32 and the result is saved in ``--dtype`` (bfloat16 by default: training was bf16; the original merged in
fp16). A LoRA checkpoint is recognised by its ``adapter_config.json``, not by "lora" in its name. The processor
(tokenizer, chat template, image processor with its pixel bounds) is taken from the adapter folder when it has
one, else from the base.
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import torch
from transformers import AutoModelForImageTextToText, AutoProcessor

from tinyrs_sft import __version__
from tinyrs_sft.cliargs import EXIT_FAILURE, StrictArgumentParser, setup_logging
from tinyrs_sft.model import set_use_cache


logger = logging.getLogger(__name__)

DTYPES = {"bfloat16": torch.bfloat16, "float16": torch.float16, "float32": torch.float32}


def merge_lora(
    adapter_path: str | Path, output_dir: str | Path, base_model: str | None = None, dtype: str = "bfloat16"
):
    """Merge ``adapter_path`` into its base model and save a full checkpoint (weights, config, generation config,
    processor) to ``output_dir``. Returns the merged model."""
    from peft import PeftModel

    adapter_path = Path(adapter_path)
    config_file = adapter_path / "adapter_config.json"
    if not config_file.is_file():
        raise ValueError(f"{adapter_path}: no adapter_config.json, so this is not a LoRA checkpoint")
    if base_model is None:
        base_model = json.loads(config_file.read_text()).get("base_model_name_or_path")
        if not base_model:
            raise ValueError(f"{config_file}: no base_model_name_or_path; pass --base_model")
    if dtype not in DTYPES:
        raise ValueError(f"--dtype must be one of {sorted(DTYPES)}, got {dtype!r}")
    base = AutoModelForImageTextToText.from_pretrained(base_model, dtype=torch.float32)
    model = PeftModel.from_pretrained(base, str(adapter_path), torch_dtype=torch.float32)
    merged = model.merge_and_unload()
    merged = merged.to(DTYPES[dtype])
    set_use_cache(merged.config, True)
    output_dir = Path(output_dir)
    merged.save_pretrained(output_dir, safe_serialization=True)
    has_processor = any((adapter_path / n).is_file() for n in ("processor_config.json", "preprocessor_config.json"))
    processor_source = adapter_path if has_processor else base_model
    AutoProcessor.from_pretrained(processor_source).save_pretrained(output_dir)
    logger.info("merged %s into %s -> %s (%s)", adapter_path, base_model, output_dir, dtype)
    return merged


def main(argv: list[str] | None = None) -> int:
    parser = StrictArgumentParser(prog="tinyrs-sft merge-lora", description=__doc__.splitlines()[0])
    parser.add_argument("--adapter_path", required=True, help="LoRA training output or checkpoint folder")
    parser.add_argument("--output_dir", required=True, help="where the merged checkpoint is written")
    parser.add_argument("--base_model", default=None, help="base checkpoint (default: from adapter_config.json)")
    parser.add_argument("--dtype", default="bfloat16", choices=sorted(DTYPES))
    parser.add_argument("--version", action="version", version=f"tinyrs-sft {__version__}")
    args = parser.parse_args(argv)
    setup_logging()
    try:
        merge_lora(args.adapter_path, args.output_dir, base_model=args.base_model, dtype=args.dtype)
    except (ValueError, OSError) as err:  # not a LoRA folder, no base named, base or adapter unreadable
        message = str(err).strip().splitlines()[0] if str(err).strip() else repr(err)
        sys.stderr.write(f"tinyrs-sft merge-lora: error: {message}\n")
        return EXIT_FAILURE
    return 0


if __name__ == "__main__":
    sys.exit(main())
