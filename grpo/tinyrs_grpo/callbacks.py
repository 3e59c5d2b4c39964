"""Trainer callbacks: a plain JSONL metrics log (works with report_to none) and the judge's final counters."""

from __future__ import annotations

import json
import logging
import math
import os
from typing import Any

from transformers import TrainerCallback


logger = logging.getLogger(__name__)


class JsonlLogCallback(TrainerCallback):
    """Append every log record (step metrics: rewards, reward_std, frac_reward_zero_std, kl, judge/*) to a file."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._started = False

    def _drop_records_from(self, step: int) -> None:
        """A resumed (or restarted) run logs these steps again: drop the killed run's copies, keep earlier ones."""
        if not os.path.isfile(self.path):
            return
        kept = []
        with open(self.path, encoding="utf-8") as handle:
            for line in handle:
                try:
                    record = json.loads(line)
                except ValueError:  # a line cut short by a killed process
                    continue
                if isinstance(record, dict) and isinstance(record.get("step"), int) and record["step"] < step:
                    kept.append(line if line.endswith("\n") else line + "\n")
        tmp = self.path + ".tmp"
        with open(tmp, "w", encoding="utf-8") as handle:
            handle.writelines(kept)
        os.replace(tmp, self.path)

    def on_log(self, args: Any, state: Any, control: Any, logs: dict | None = None, **kwargs: Any) -> None:
        if not state.is_world_process_zero or not logs:
            return
        if not self._started:
            self._started = True
            self._drop_records_from(state.global_step)
        record = {"step": state.global_step}
        for key, value in logs.items():
            if isinstance(value, float) and not math.isfinite(value):
                value = None
            record[key] = value
        os.makedirs(os.path.dirname(self.path) or ".", exist_ok=True)
        with open(self.path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(record, default=str) + "\n")


class JudgeSummaryCallback(TrainerCallback):
    """Log the judge's cumulative counters at the end of training."""

    def __init__(self, judge: Any) -> None:
        self.judge = judge

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        stats = self.judge.stats.snapshot()
        logger.info("judge totals: %s", ", ".join(f"{k}={v}" for k, v in stats.items()))


class CorruptImageSummaryCallback(TrainerCallback):
    """Log the total of corrupt images skipped during training (every process's, from corrupt_images.jsonl)."""

    def __init__(self, output_dir: str) -> None:
        self.output_dir = output_dir

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if not state.is_world_process_zero:
            return
        from tinyrs_grpo.guard import CORRUPT_LOG, corrupt_total

        records = corrupt_total(self.output_dir)
        if not records:
            logger.info("corrupt images skipped during training: 0")
            return
        rows = ", ".join(f"{r.get('split')} row {r.get('row')}" for r in records[:10])
        more = f" and {len(records) - 10} more" if len(records) > 10 else ""
        logger.warning(
            "corrupt images skipped during training: %d (%s%s; details in %s)",
            len(records),
            rows,
            more,
            os.path.join(self.output_dir, CORRUPT_LOG),
        )
