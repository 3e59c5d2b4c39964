"""SFT start-up cost: time and peak memory before the first training step, and of ``tinyrs-sft check-data``.

    python benchmarks/sft_startup.py --records 100000 1000000
    python benchmarks/sft_startup.py --records 1000000 --only train      # one measurement of one size

For each size a LLaVA-style JSON list is written (every record points to the same 56x56 PNG, as a data set of one
image would; the per-record cost of the check is the same for distinct images, minus the file-system cache), then,
each in a fresh process with one thread:

* ``check-data``: ``python -m tinyrs_sft.check_data`` on the file (wall time, peak RSS);
* ``train``: ``tinyrs_sft.train`` on the tiny model, one process on CPU, stopped when the first step ends (wall time
  from process start to the end of step 1, peak RSS at that point), in a fresh output folder;
* ``train again``: the same command in the same output folder (what a resume costs before its first step);
* with ``--scan_ranks 1 2``: the start-up scan alone (``tinyrs_sft.scan.scan_once``) over 1 and 2 gloo processes
  (time of the slowest rank; the peak RSS of these rows is the launcher's, torch included: ignore it).

Figures are printed as one Markdown table and, with ``--json``, written to a file. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


CHILD_ENV = {
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "WANDB_MODE": "disabled",
    "TOKENIZERS_PARALLELISM": "false",
}


def write_records(path: Path, n: int) -> None:
    """n caption-style records (about 330 bytes each, like the VersaD lists), all with the image ``img.png``."""
    answer = (
        "The image shows a dense residential area with rows of detached houses, tree-lined streets, a small park "
        "in the north-east corner and a two-lane road crossing from west to east."
    )
    with path.open("w") as f:
        f.write("[")
        for i in range(n):
            record = {
                "id": f"r{i:07d}",
                "image": "img.png",
                "conversations": [
                    {"from": "human", "value": "<image>\nDescribe the image in detail."},
                    {"from": "gpt", "value": answer},
                ],
            }
            f.write(("," if i else "") + json.dumps(record))
        f.write("]")


def run_measured(cmd: list[str], env: dict[str, str]) -> tuple[float, float, int]:
    """Wall seconds, peak RSS (GiB) and exit status of one child process."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        sys.stderr.write(proc.stderr.read()[-3000:])
    return wall, usage.ru_maxrss / 2**20, proc.returncode


def child_train(args: argparse.Namespace) -> None:
    """Run the trainer in this process and stop it at the end of step 1, writing time and peak RSS."""
    import resource

    from transformers import TrainerCallback

    import tinyrs_sft.train as train_module

    started = float(os.environ["TINYRS_BENCH_T0"])

    class FirstStep(TrainerCallback):
        def on_step_end(self, training_args, state, control, **kwargs):
            elapsed = time.time() - started
            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
            Path(args.result).write_text(json.dumps({"seconds": elapsed, "peak_gib": peak}))
            sys.stderr.flush()
            os._exit(0)  # the figure is taken; skip saving the model

    base = train_module.SFTTrainer

    class TimedTrainer(base):
        def __init__(self, *a, **k):
            super().__init__(*a, **k)
            self.add_callback(FirstStep())

    train_module.SFTTrainer = TimedTrainer
    train_module.cli(args.train_args)


def _scan_rank(rank: int, world: int, port: int, data: str, folder: str, out: str) -> None:
    import torch.distributed as dist

    from tinyrs_sft.records import MediaPolicy, RecordSource
    from tinyrs_sft.scan import scan_once, shard_bounds

    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    source = RecordSource(data)
    dist.barrier()
    start = time.perf_counter()
    report, _ = scan_once(source, MediaPolicy(Path(folder)), verify_images=False)
    seconds = time.perf_counter() - start
    lo, hi = shard_bounds(len(source), rank, world)
    Path(out, f"scan{rank}.json").write_text(
        json.dumps({"seconds": seconds, "checked": hi - lo, "good": len(report.good)})
    )
    dist.destroy_process_group()


def child_scan(args: argparse.Namespace) -> None:
    """The start-up scan alone (scan_once), over ``--ranks`` gloo processes; writes the slowest rank's time."""
    import socket

    import torch.multiprocessing as mp

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    out = Path(args.result).parent
    mp.start_processes(
        _scan_rank, args=(args.ranks, port, args.data, args.folder, str(out)), nprocs=args.ranks, start_method="fork"
    )
    ranks = [json.loads((out / f"scan{r}.json").read_text()) for r in range(args.ranks)]
    Path(args.result).write_text(json.dumps({"seconds": max(r["seconds"] for r in ranks), "ranks": ranks}))


def train_command(model: Path, data: Path, out: Path, result: Path) -> list[str]:
    flags = [
        "--model_id", str(model), "--data_path", str(data), "--output_dir", str(out),
        "--use_cpu", "True", "--report_to", "none", "--per_device_train_batch_size", "1", "--max_steps", "1",
        "--save_strategy", "no", "--dataloader_num_workers", "0", "--disable_tqdm", "True", "--tune_merger", "True",
    ]  # fmt: skip
    return [sys.executable, __file__, "--child_train", "--result", str(result), "--", *flags]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--only", choices=["check-data", "train", "scan"], default=None)
    parser.add_argument(
        "--scan_ranks", type=int, nargs="*", default=[], help="also time the start-up scan alone over N gloo ranks"
    )
    parser.add_argument("--workdir", default=None, help="keep the data and model here (default: a temp folder)")
    parser.add_argument("--json", default=None, help="also write the figures to this file")
    parser.add_argument("--child_train", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--child_scan", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--ranks", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--data", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--folder", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--result", default=None, help=argparse.SUPPRESS)
    parser.add_argument("train_args", nargs="*", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_train:
        child_train(args)
        return
    if args.child_scan:
        child_scan(args)
        return

    # This process stays small (no torch, no PIL): on Linux a child's peak RSS includes the parent's at fork time.
    env = {**os.environ, **CHILD_ENV}
    work = Path(args.workdir or tempfile.mkdtemp(prefix="sft-startup-"))
    work.mkdir(parents=True, exist_ok=True)
    model = work / "model"
    if not (model / "config.json").is_file():
        build = f"from tinyrs_demo.tiny_model import build_tiny_model; build_tiny_model({str(model)!r}, preset='tiny')"
        subprocess.run([sys.executable, "-c", build], env=env, check=True, capture_output=True)
    image = f"from PIL import Image; Image.new('RGB', (56, 56), (40, 120, 60)).save({str(work / 'img.png')!r})"
    subprocess.run([sys.executable, "-c", image], env=env, check=True)
    rows = []
    for n in args.records:
        data = work / f"records_{n}.json"
        if not data.is_file():
            write_records(data, n)
        size_mb = data.stat().st_size / 1e6
        if args.only in (None, "check-data"):
            cmd = [sys.executable, "-m", "tinyrs_sft.check_data", "--data_path", str(data)]
            wall, peak, rc = run_measured(cmd, env)
            rows.append((n, size_mb, "check-data", wall, peak, rc))
        if args.only in (None, "train"):
            out = work / f"out_{n}"
            subprocess.run(["rm", "-rf", str(out)], check=True)
            for label in ("train", "train again"):
                result = work / "result.json"
                result.unlink(missing_ok=True)
                env["TINYRS_BENCH_T0"] = repr(time.time())
                wall, peak, rc = run_measured(train_command(model, data, out, result), env)
                if result.is_file():
                    figures = json.loads(result.read_text())
                    wall, peak = figures["seconds"], figures["peak_gib"]
                rows.append((n, size_mb, label + " (to end of step 1)", wall, peak, rc))
        for ranks in args.scan_ranks if args.only in (None, "scan") else []:
            result = work / "result.json"
            result.unlink(missing_ok=True)
            cmd = [sys.executable, __file__, "--child_scan", "--ranks", str(ranks), "--data", str(data)]
            cmd += ["--folder", str(work), "--result", str(result)]
            _, peak, rc = run_measured(cmd, env)
            wall = json.loads(result.read_text())["seconds"] if result.is_file() else float("nan")
            rows.append((n, size_mb, f"start-up scan alone, {ranks} rank(s)", wall, peak, rc))
    sys.stdout.write("| records | file MB | what | seconds | peak RSS GiB | exit |\n|---|---|---|---|---|---|\n")
    for n, size_mb, what, wall, peak, rc in rows:
        sys.stdout.write(f"| {n:,} | {size_mb:.0f} | {what} | {wall:.1f} | {peak:.2f} | {rc} |\n")
    if args.json:
        keys = ("records", "file_mb", "what", "seconds", "peak_rss_gib", "exit")
        Path(args.json).write_text(json.dumps([dict(zip(keys, row)) for row in rows], indent=1))


if __name__ == "__main__":
    main()
