"""Run the benchmarks: ``python -m tinyrs_eval.run`` / ``tinyrs-eval run`` (also under ``accelerate launch``).

    accelerate launch --num_processes 1 -m tinyrs_eval.run --config eval/configs/tinyrs_reasoning.yaml \\
        --model_name_or_path CKPT --data_root DATA --output_dir OUT

Exit status: 0 done, 1 bad data or a failed run, 2 a usage error (argparse, the recipe, an unknown --task).

Flow: check the backend can run here -> read and validate every selected benchmark and its image folders (before
any model is loaded) -> per benchmark, skip samples already in the run's JSONL files, split the rest over the
processes, generate in batches and append each batch to the rank's part file -> rank 0 merges, scores both modes and
writes results.json / summary.md.
"""

from __future__ import annotations

import datetime
import logging
import sys
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image
from tqdm import tqdm

from tinyrs_eval import metrics, storage
from tinyrs_eval.backends import Backend, GenerationSettings, Request, check_available, create_backend
from tinyrs_eval.benchmarks import BENCHMARKS, Benchmark, Sample, parse_tasks, preflight
from tinyrs_eval.cliargs import EXIT_FAILURE, setup_logging
from tinyrs_eval.config import RunConfig, make_run_name, parse_run_args, settings_fingerprint
from tinyrs_eval.distributed import Dist, init_dist, shard
from tinyrs_eval.dry_run import dry_run_main
from tinyrs_eval.errors import ConfigError, EvalError
from tinyrs_eval.images import load_image
from tinyrs_eval.prompts import ChatTemplate, build_query, load_template
from tinyrs_eval.results import markdown_table, package_versions, write_json_atomic, write_outputs


logger = logging.getLogger("tinyrs_eval")


def load_images(batch: list[Sample]) -> list[tuple[Image.Image | None, str | None]]:
    """The batch's images; a sample whose path was refused (outside --data_root) is not opened."""
    return [(None, s.path_error) if s.path_error else load_image(s.image_path) for s in batch]


@dataclass
class Timer:
    totals: dict[str, float] = field(default_factory=dict)

    def add(self, key: str, seconds: float) -> None:
        self.totals[key] = self.totals.get(key, 0.0) + seconds


class Evaluator:
    """Runs the selected benchmarks for one configuration on this process."""

    def __init__(self, cfg: RunConfig, template: ChatTemplate, run_dir: Path, dist: Dist):
        self.cfg = cfg
        self.template = template
        self.run_dir = run_dir
        self.dist = dist
        self.reasoning = cfg.reasoning_config is not None
        self._backend: Backend | None = None
        self.model_load_s = 0.0

    # -- model -------------------------------------------------------------------------------------------------
    @property
    def backend(self) -> Backend:
        """Loaded on first use, so a fully cached run only re-scores."""
        if self._backend is None:
            t0 = time.perf_counter()
            cfg = self.cfg
            settings = GenerationSettings(
                max_new_tokens=cfg.max_new_tokens,
                do_sample=cfg.do_sample,
                temperature=cfg.temperature,
                top_p=cfg.top_p,
                beam_size=cfg.beam_size,
                seed=cfg.seed,
                use_cache=cfg.use_cache,
            )
            self._backend = create_backend(
                cfg.model_type,
                model_path=cfg.model_name_or_path,
                settings=settings,
                template=self.template,
                template_path=self.run_dir / "chat_template.json",
                dtype=cfg.dtype,
                device=self.dist.device,
                engine=cfg.lmdeploy_engine,
                session_len=cfg.session_len,
                tp=cfg.tp,
            )
            self.model_load_s = time.perf_counter() - t0
        return self._backend

    def close(self) -> None:
        if self._backend is not None:
            self._backend.close()

    # -- one batch ---------------------------------------------------------------------------------------------
    def infer_batch(
        self,
        bench: Benchmark,
        batch: list[Sample],
        timer: Timer,
        images: Future | None = None,
    ) -> list[dict[str, Any]]:
        """Generate for one batch; ``images`` is the batch's images being loaded in the background, if any."""
        t0 = time.perf_counter()
        loaded = images.result() if images is not None else load_images(batch)
        records: list[dict[str, Any]] = []
        requests: list[Request] = []
        positions: list[int] = []
        for s, (image, error) in zip(batch, loaded):
            size = s.size or ((image.height, image.width) if image is not None else None)
            if s.size and image is not None and tuple(s.size) != (image.height, image.width):
                real = (image.height, image.width)
                logger.debug("%s: size %s in the file, image is %s (height, width)", s.image_path, s.size, real)
            query = build_query(bench.task_type, s.question, self.cfg.prompt_style)
            rec: dict[str, Any] = {"index": s.index}
            if s.sample_id is not None:
                rec["id"] = s.sample_id
            rec.update(
                image="" if s.path_error else str(s.image_path),  # a refused path is not handed on (report)
                size=list(size) if size else None,
                question=s.question,
                query=query,
                answer=s.answer,
            )
            if s.types is not None:
                rec["type"] = list(s.types)
            rec.update(pred="", error=error)
            if error is not None:
                logger.warning("%s record %d: %s (counted wrong)", bench.file, s.index, error)
            else:
                requests.append(Request(prompt=self.template.render(query), query=query, image=image))
                positions.append(len(records))
            records.append(rec)
        t1 = time.perf_counter()
        outputs = self.backend.generate(requests) if requests else []
        if len(outputs) != len(requests):
            raise RuntimeError(f"backend returned {len(outputs)} outputs for {len(requests)} requests")
        t2 = time.perf_counter()
        for pos, text in zip(positions, outputs):
            records[pos]["pred"] = text
        for rec in records:
            self.annotate(bench, rec)
        timer.add("images_s", t1 - t0)
        timer.add("generate_s", t2 - t1)
        timer.add("score_s", time.perf_counter() - t2)
        return records

    def annotate(self, bench: Benchmark, rec: dict[str, Any]) -> None:
        """Extracted answer, malformed flag and the per-sample score in both modes."""
        rec["extracted_answer"] = metrics.extract_answer(rec["pred"])
        rec["malformed"] = not rec["error"] and metrics.is_malformed(rec["pred"])
        kw = {"prompt_style": self.cfg.prompt_style, "reasoning": self.reasoning}
        rec["score"] = {mode: metrics.sample_score(bench.task_type, rec, mode, **kw) for mode in metrics.MODES}

    # -- one benchmark -----------------------------------------------------------------------------------------
    def run_benchmark(self, bench: Benchmark, samples: list[Sample]) -> dict[str, Any] | None:
        """Infer what is missing, merge, score. Returns the benchmark's results on rank 0, None elsewhere."""
        cfg, dist, stem = self.cfg, self.dist, bench.stem
        t_start = time.perf_counter()
        timer = Timer()
        done = storage.read_all(self.run_dir, stem)
        for s in samples:
            rec = done.get(s.index)
            if rec is not None and (rec.get("question") != s.question or rec.get("answer") != s.answer):
                raise ConfigError(
                    f"{storage.merged_path(self.run_dir, stem)}: cached record {s.index} does not match "
                    f"{bench.file}; the benchmark file changed: rerun with --force_inference true"
                )
        pending = [s for s in samples if s.index not in done]
        dist.barrier()  # everyone has read the same state before anyone appends
        mine = shard(pending, dist.rank, dist.world_size)
        if dist.is_main:
            logger.info(
                "%s: %d samples, %d cached, %d to run on %d process(es)",
                bench.key,
                len(samples),
                len(samples) - len(pending),
                len(pending),
                dist.world_size,
            )
        if mine:
            t0 = time.perf_counter()
            self.backend  # noqa: B018  (load the model outside the benchmark's timings)
            t_start += time.perf_counter() - t0
            path = storage.part_path(self.run_dir, stem, dist.rank, dist.world_size)
            bar = tqdm(total=len(mine), desc=bench.key, unit="sample", disable=not dist.is_main, file=sys.stderr)
            batches = [mine[i : i + cfg.batch_size] for i in range(0, len(mine), cfg.batch_size)]
            # Images of the next batch are read in a background thread while the current batch generates.
            with storage.JsonlAppender(path) as out, ThreadPoolExecutor(max_workers=1) as pool:
                pending_images = pool.submit(load_images, batches[0])
                for i, batch in enumerate(batches):
                    current = pending_images
                    if i + 1 < len(batches):
                        pending_images = pool.submit(load_images, batches[i + 1])
                    records = self.infer_batch(bench, batch, timer, current)
                    t0 = time.perf_counter()
                    out.write(records)
                    timer.add("write_s", time.perf_counter() - t0)
                    bar.update(len(records))
            bar.close()
        dist.barrier()
        result = None
        if dist.is_main:
            t0 = time.perf_counter()
            merged = storage.merge(self.run_dir, stem)
            timer.add("write_s", time.perf_counter() - t0)
            missing = [s.index for s in samples if s.index not in merged]
            if missing:
                raise RuntimeError(f"{bench.key}: no prediction for records {missing[:10]} after merging")
            t0 = time.perf_counter()
            records = [merged[s.index] for s in samples]
            result = self.score(bench, records)
            timer.add("score_s", time.perf_counter() - t0)
            wall = time.perf_counter() - t_start
            result["timings"] = {"wall_s": round(wall, 4), **{k: round(v, 4) for k, v in timer.totals.items()}}
            result["n_inferred"] = len(pending)
            result["samples_per_s"] = round(len(pending) / wall, 4) if pending and wall > 0 else None
            result["predictions"] = str(storage.merged_path(self.run_dir, stem).relative_to(self.run_dir.parent))
        dist.barrier()
        return result

    def score(self, bench: Benchmark, records: list[dict[str, Any]]) -> dict[str, Any]:
        nulls = [r["index"] for r in records if not r.get("error") and not isinstance(r.get("pred"), str)]
        if nulls:
            logger.warning(
                "%s: %d cached record(s) have no text prediction (pred is null or missing; first: record %d): strict "
                "counts them malformed (wrong); legacy scores the text 'None', as the original did",
                bench.file,
                len(nulls),
                nulls[0],
            )
        kw = {"prompt_style": self.cfg.prompt_style, "reasoning": self.reasoning}
        return {
            "file": bench.file,
            "task_type": bench.task_type,
            "n_samples": len(records),
            "strict": metrics.score_records(bench.task_type, records, "strict", **kw),
            "legacy": metrics.score_records(bench.task_type, records, "legacy", **kw),
            "malformed": metrics.count_malformed(records),
            "errors": metrics.count_errors(records),
        }


def main(cfg: RunConfig) -> dict[str, Any] | None:
    """Run an evaluation; returns the results dict on rank 0 (None on other ranks). ``--dry_run`` is handled by
    ``cli`` (tinyrs_eval.dry_run), before this is called."""
    if cfg.dry_run:
        raise ConfigError("run.main does not dry-run: use tinyrs_eval.dry_run.dry_run (tinyrs-eval run --dry_run)")
    t_start = time.perf_counter()
    check_available(cfg.model_type)
    if cfg.cpu_threads:
        import torch

        torch.set_num_threads(cfg.cpu_threads)
    dist = init_dist()
    setup_logging(cfg.log_level, main_process=dist.is_main)
    benches = parse_tasks(cfg.task)
    template = load_template(cfg.reasoning_config)
    samples = preflight(cfg.data_root, benches, cfg.limit, cfg.allow_external_image_paths)  # before any model loads
    settings = settings_fingerprint(cfg, template)
    run_name = make_run_name(cfg, template, settings)
    output_dir = Path(cfg.output_dir)
    run_dir = output_dir / run_name
    storage.check_settings(run_dir, settings, cfg.force_inference)  # other weights under the same --run_name
    if dist.is_main:
        storage.check_writable(run_dir)  # before the model loads: a read-only or full disk fails now, in one line
        setup_logging(cfg.log_level, main_process=dist.is_main, log_file=run_dir / "eval.log")
        logger.info(
            "run %s -> %s (prompt style %s, template %s)",
            run_name,
            run_dir,
            cfg.prompt_style,
            cfg.reasoning_config or "default",
        )
        write_json_atomic(run_dir / "chat_template.json", template.to_dict())
        write_json_atomic(run_dir / storage.SETTINGS_FILE, settings)
        if cfg.force_inference:
            for bench in benches:
                storage.remove_predictions(run_dir, bench.stem)
    dist.barrier()

    evaluator = Evaluator(cfg, template, run_dir, dist)
    bench_results: dict[str, Any] = {}
    try:
        for bench in benches:
            result = evaluator.run_benchmark(bench, samples[bench.key])
            if result is not None:
                bench_results[bench.key] = result
    finally:
        evaluator.close()
    if not dist.is_main:
        return None
    results = {
        "run_name": run_name,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "config": cfg.to_dict(),
        "template": template.to_dict(),
        "world_size": dist.world_size,
        "versions": package_versions(),
        "timings": {
            "total_s": round(time.perf_counter() - t_start, 4),
            "model_load_s": round(evaluator.model_load_s, 4),
        },
        "benchmarks": bench_results,
    }
    write_outputs(results, output_dir, run_dir, order=list(BENCHMARKS))
    return results


def cli(argv: list[str] | None = None) -> int:
    """Parse ``--config recipe.yaml`` plus flags and run ``main`` (or the dry run); print the score table.

    A usage error exits 2 (``SystemExit``, found while parsing); bad data and failed runs return 1 after one line.
    """
    cfg = parse_run_args(argv)
    if cfg.dry_run:
        return dry_run_main(cfg)
    try:
        results = main(cfg)
    except EvalError as exc:  # bad data, model, template or output folder found while running
        sys.stderr.write(f"error: {exc}\n")
        return EXIT_FAILURE
    except OSError as exc:  # disk full, read-only, permission: one line; a rerun resumes what was written
        if exc.errno not in storage.WRITE_ERRNOS:
            raise
        sys.stderr.write(f"error: {exc.filename or cfg.output_dir}: {exc.strerror or exc}\n")
        return EXIT_FAILURE
    if results is not None:
        sys.stdout.write(markdown_table(results) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(cli())
