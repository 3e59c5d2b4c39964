"""Warnings that tell a ``tinyrs-grpo`` user nothing, silenced once when the command starts.

Each entry is a message pattern and category of a warning raised inside torch, DeepSpeed, transformers or TRL about
their own code, which no flag or setting of ours can avoid. Without the filter a 4-step CPU run under ZeRO-3 logged
133 FutureWarnings (124 of them ``reduce_scatter_tensor``), an 8-step demo run 440. Warnings are matched by their
exact start, so a new or different warning still shows. ``python -W ...`` or ``PYTHONWARNINGS`` turns the filter
off: whoever asks for warnings explicitly sees all of them.
"""

from __future__ import annotations

import re
import sys
import warnings


KNOWN_NOISE: tuple[tuple[str, type[Warning], str], ...] = (
    (
        "`torch.distributed.reduce_scatter_tensor` is deprecated",
        FutureWarning,
        "DeepSpeed ZeRO-3 (deepspeed.comm) reduces every partitioned gradient with it: dozens of lines per step",
    ),
    (
        "`torch.distributed.all_gather_into_tensor` is deprecated",
        FutureWarning,
        "DeepSpeed ZeRO-3 gathers partitioned parameters with it",
    ),
    (
        "`is_gradient_checkpointing` is deprecated",
        FutureWarning,
        "read by TRL's generation context (trl.models.utils), once per generation step",
    ),
    (
        "`gradient_checkpointing` is deprecated and will be removed in v6",
        FutureWarning,
        "TRL's GRPOConfig defaults gradient_checkpointing to True, so transformers 5 warns on every run; the flag "
        "keeps working (an alias of activation_checkpointing)",
    ),
)


def silence_known_noise() -> bool:
    """Install an ``ignore`` filter for each ``KNOWN_NOISE`` warning; False (nothing installed) under ``-W``.

    Safe to call more than once: ``warnings.filterwarnings`` replaces an identical filter instead of adding one.
    """
    if sys.warnoptions:
        return False
    for message, category, _why in KNOWN_NOISE:
        warnings.filterwarnings("ignore", message=re.escape(message), category=category)
    return True
