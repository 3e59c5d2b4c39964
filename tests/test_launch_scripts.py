"""The launch scripts under scripts/: one per stage for one node (<stage>.sh) and one per stage under SLURM
(<stage>.slurm, --nodes N), all built on scripts/_launch.sh.

With the real entry points (DRY_RUN=1: arguments, data and paths, no model) the scripts must parse, so a renamed or
removed flag breaks this test, not a user's cluster job. With stand-in launchers (python, torchrun, srun, scontrol,
deepspeed, accelerate that print their arguments) the resolved multi-node commands are checked in milliseconds.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest


REPO = Path(__file__).resolve().parents[1]
# CPU machines reject --bf16/--tf32; the scripts pass extra arguments through to the trainer.
CPU_SFT = ["--use_cpu", "True", "--bf16", "False", "--tf32", "False"]


def run_script(script: str, extra: list[str], env_extra: dict[str, str]) -> subprocess.CompletedProcess:
    env = dict(os.environ, DRY_RUN="1", **env_extra)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    return subprocess.run(
        ["bash", str(REPO / "scripts" / script), *extra],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.parametrize(
    ("script", "extra", "layout"),
    [
        ("pretrain.sh", [], "2 accumulation x 4 processes"),
        ("sft.sh", [], "2 accumulation x 4 processes"),
        # two nodes of 4 GPUs: the script halves the accumulation so that the recipe's global batch stays 128
        ("cot_sft.slurm", ["--nodes", "2"], "1 accumulation x 8 processes"),
    ],
)
def test_sft_scripts_parse(script, extra, layout, demo_data_dir, tiny_model_dir, tmp_path):
    # No CPU flags: the SFT dry run checks paths and prints settings without probing for a GPU (bf16/tf32 as given).
    env = {
        "DATA_PATH": str(demo_data_dir / "sft.json"),
        "IMAGE_FOLDER": str(demo_data_dir / "images"),
        "MODEL_NAME": str(tiny_model_dir),
        "OUTPUT_DIR": str(tmp_path / "out"),
    }
    proc = run_script(script, extra, env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "dry run: arguments are valid" in proc.stderr
    # The seed recipe's settings arrive in the trainer (global batch 128 on 4 GPUs: 16 x 2 accumulation).
    assert "image_min_pixels=401408" in proc.stderr and "image_max_pixels=1003520" in proc.stderr
    assert f"global batch 128 = 16 per device x {layout}" in proc.stderr
    # The recipe's DeepSpeed config (ZeRO-3 without offload), not a second one chosen by the script.
    assert "DeepSpeed ZeRO stage 3, offload: none" in proc.stderr and "--deepspeed" not in proc.stdout
    assert "DeepSpeed ZeRO stage 3" in proc.stderr and "precision bf16" in proc.stderr
    # TRL's names reach the trainer; nothing is said about aliases or no-effect flags (the script uses neither).
    assert f"model_name_or_path='{env['MODEL_NAME']}'" in proc.stderr and "is an alias of" not in proc.stderr
    assert "Warning" not in proc.stderr and "deprecated" not in proc.stderr


@pytest.mark.slow  # ~10 s of subprocess start-up; tests/sft/test_dry_run.py covers the same check in-process
def test_sft_script_dry_run_fails_without_data(tiny_model_dir, tmp_path):
    # It used to say "arguments are valid" for a missing data file.
    env = {"DATA_PATH": str(tmp_path / "missing.json"), "MODEL_NAME": str(tiny_model_dir)}
    proc = run_script("sft.sh", [], {**env, "IMAGE_FOLDER": str(tmp_path), "OUTPUT_DIR": str(tmp_path / "out")})
    assert proc.returncode == 1 and "missing.json: data file not found" in proc.stderr


def test_sft_script_rejects_unknown_flag():
    proc = run_script("sft.sh", [*CPU_SFT, "--no_such_flag", "1"], {})
    assert proc.returncode != 0
    assert "no_such_flag" in proc.stderr


def test_grpo_slurm_parses():
    # no CPU flags: the dry run must work as is on a login node without a GPU (--use_cpu is implied there)
    proc = run_script("grpo.slurm", [], {"SLURM_JOB_ID": "123", "CUDA_VISIBLE_DEVICES": ""})
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "arguments are valid" in proc.stderr
    assert "beta=0.001" in proc.stderr and "num_generations=4" in proc.stderr
    assert "max_pixels=checkpoint's" in proc.stderr and "use_bias_correction_kl=False" in proc.stderr


def test_eval_script_checks_flags_and_data_layout(demo_data_dir, tiny_model_dir, tmp_path):
    out = tmp_path / "eval_out"
    env = {"DATA_ROOT": str(demo_data_dir / "eval"), "OUTPUT_DIR": str(out)}
    # No MODEL_TYPE: the script picks the backend that can run here. lmdeploy imports (a stand-in package), but without
    # a CUDA GPU that is hf; it used to default to lmdeploy and fail on the first command a new user ran.
    fake = tmp_path / "fake_site"
    (fake / "lmdeploy").mkdir(parents=True)
    (fake / "lmdeploy" / "__init__.py").write_text("")
    expected = "lmdeploy" if _cuda_visible() else "hf"
    # The default model is a hub id that is not downloaded here: offline, the dry run names the download.
    proc = run_script("eval.sh", [], {**env, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(fake)})
    assert f"eval.sh: MODEL_TYPE={expected} (" in proc.stderr, proc.stderr[-2000:]
    assert proc.returncode == 1 and "(hf download aybora/Qwen2-VL-TinyRS-R1)" in proc.stderr
    assert "huggingface-cli" not in proc.stderr
    env["MODEL_TYPE"] = "hf"  # an explicit backend wins, and is not announced
    env["MODEL_NAME_OR_PATH"] = str(tiny_model_dir)
    proc = run_script("eval.sh", [], env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "eval.sh: MODEL_TYPE" not in proc.stderr
    assert not any(out.rglob("results.json")), "a dry run must not write results"
    # Explicitly asking for lmdeploy without it installed is refused with the way out named.
    proc = run_script("eval.sh", [], {**env, "MODEL_TYPE": "lmdeploy"})
    assert proc.returncode != 0 and "--model_type hf" in proc.stderr


def _cuda_visible() -> bool:
    import torch

    return torch.cuda.is_available()


# ---- resolved commands, with stand-in launchers ------------------------------------------------------------------
STAGES = {  # stage -> (entry point module, recipes in the order the script runs them)
    "pretrain": ("tinyrs_sft.train", ["sft/configs/pretrain.yaml"]),
    "sft": ("tinyrs_sft.train", ["sft/configs/sft.yaml"]),
    "cot_sft": ("tinyrs_sft.train", ["sft/configs/cot_sft.yaml"]),
    "grpo": ("tinyrs_grpo.train", ["grpo/configs/tinyrs_r1.yaml"]),
    "eval": ("tinyrs_eval.run", ["eval/configs/tinyrs_instant.yaml", "eval/configs/tinyrs_reasoning.yaml"]),
}
SFT_STAGES = ("pretrain", "sft", "cot_sft")
HOSTS = ["gpu07", "gpu08"]
# Each stand-in prints "RAN <name> <arguments, shell-quoted>". srun runs its command once per node, the way SLURM's
# does with one task per node, with that node's SLURM_NODEID; scontrol expands any node list to HOSTS.
RECORDER = """#!/usr/bin/env bash
printf 'RAN %s' "$(basename "$0")"; printf ' %q' "$@"; printf '\\n'
"""
FAKE_SRUN = """#!/usr/bin/env bash
nodes=1
while [[ "$1" == --* ]]; do
    case "$1" in --nodes) nodes=$2; shift 2 ;; *=*) shift ;; *) shift 2 ;; esac
done
for ((i = 0; i < nodes; i++)); do SLURM_NODEID=$i SLURM_PROCID=$i "$@" || exit $?; done
"""
FAKE_SCONTROL = "#!/usr/bin/env bash\n[[ \"$1 $2\" == 'show hostnames' ]] && printf '%s\\n' " + " ".join(HOSTS) + "\n"


@pytest.fixture(scope="module")
def fake_bin(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("fake_bin")
    for name, text in {
        "python": RECORDER,
        "torchrun": RECORDER,
        "deepspeed": RECORDER,
        "accelerate": RECORDER,
        "srun": FAKE_SRUN,
        "scontrol": FAKE_SCONTROL,
    }.items():
        (folder / name).write_text(text)
        (folder / name).chmod(0o755)
    return folder


LAUNCH_VARIABLES = {  # what scripts/_launch.sh reads: a developer's exported value must not leak into a test
    *("MODEL_NAME", "DATA_PATH", "IMAGE_FOLDER", "OUTPUT_DIR", "DEEPSPEED_CONFIG", "DATASET_NAME", "WANDB_RUN_NAME"),
    *("MAX_PIXELS", "MIN_PIXELS", "MODEL_NAME_OR_PATH", "MODEL_PATH", "DATA_ROOT", "MODEL_TYPE", "TASK"),
    *("REASONING_CONFIG", "NUM_PROCESSES", "GPUS_PER_NODE", "NUM_DEVICES", "GLOBAL_BATCH_SIZE", "BATCH_PER_DEVICE"),
    *("MASTER_ADDR", "MASTER_PORT", "NODE_RANK", "DRY_RUN", "PYTHON"),
}


def launch(fake_bin: Path, script: str, args: list[str], env_extra: dict[str, str]) -> subprocess.CompletedProcess:
    """Run a launch script with the stand-ins first on PATH and no SLURM_* from the caller's environment."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLURM_") and k not in LAUNCH_VARIABLES}
    env.update(PATH=os.pathsep.join([str(fake_bin), env.get("PATH", "")]), PYTHON=str(fake_bin / "python"))
    env.update(MODEL_TYPE="hf", WANDB_RUN_NAME="run1", **env_extra)
    return subprocess.run(
        ["bash", str(REPO / "scripts" / script), *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=60
    )


def commands(stdout: str, first: str, ran: bool = False) -> list[list[str]]:
    """Commands whose first word is ``first``: as printed by DRY_RUN, or (``ran``) as a stand-in received them."""
    out = []
    for line in stdout.splitlines():
        words = [] if line.startswith("#") else shlex.split(line)
        if ran == (words[:1] == ["RAN"]) and words[ran : ran + 1] == [first]:
            out.append(words[ran:])
    return out


def option(words: list[str], flag: str) -> str:
    assert words.count(flag) == 1, f"{flag} given {words.count(flag)} times in {words}"
    return words[words.index(flag) + 1]


def after_module(words: list[str], module: str) -> list[str]:
    """The entry point's arguments: everything after ``-m MODULE`` / ``--module MODULE``."""
    for flag in ("-m", "--module"):
        if flag in words:
            assert words[words.index(flag) + 1] == module
            return words[words.index(flag) + 2 :]
    raise AssertionError(f"no module in {words}")


def slurm_env(nodes: int) -> dict[str, str]:
    nodelist = "gpu07" if nodes == 1 else "gpu[07-08]"
    return {"DRY_RUN": "1", "SLURM_JOB_ID": "4242", "SLURM_NNODES": str(nodes), "SLURM_JOB_NODELIST": nodelist}


@pytest.mark.parametrize("nodes", [1, 2])
@pytest.mark.parametrize("stage", list(STAGES))
def test_slurm_dry_run_prints_every_node(fake_bin, stage, nodes):
    module, recipes = STAGES[stage]
    proc = launch(fake_bin, f"{stage}.slurm", [], slurm_env(nodes))
    assert proc.returncode == 0, proc.stderr
    world = 4 * nodes
    assert proc.stdout.count(f"{nodes} node(s) x 4 processes = world size {world};") == len(recipes)
    printed = commands(proc.stdout, "torchrun")
    checks = commands(proc.stdout, "python", ran=True)
    assert len(printed) == nodes * len(recipes) and len(checks) == len(recipes)
    for i, words in enumerate(printed):
        recipe, node = recipes[i // nodes], i % nodes
        assert f"# node {node} ({HOSTS[node]}):" in proc.stdout
        assert option(words, "--node_rank") == str(node) and option(words, "--nnodes") == str(nodes)
        assert option(words, "--nproc_per_node") == "4" and option(words, "--rdzv_backend") == "c10d"
        assert option(words, "--rdzv_endpoint") == "gpu07:29500" and option(words, "--rdzv_id") == "4242"
        args = after_module(words, module)
        assert option(args, "--config") == str(REPO / recipe)
        # What the dry run checked is what every node runs (after the dry-run switches).
        ran = checks[i // nodes]
        assert ran[ran.index("-m") + 1] == module and ran[-len(args) :] == args
        if stage in SFT_STAGES:
            assert option(ran, "--dry_run_world_size") == str(world)
            # the recipe's 2 accumulation steps on 4 GPUs; 1 on 8 keeps its global batch of 128
            assert args.count("--gradient_accumulation_steps") == (nodes == 2)
            assert f"global batch 128 = 16 per device x {2 // nodes} accumulation x {world} processes" in proc.stdout
            assert "--deepspeed" not in args  # the recipe's ZeRO-3 config
        if stage == "grpo":
            assert option(args, "--run_name") == "run1" and option(args, "--output_dir") == "checkpoints/run1"
            assert f"{4 * world} completions per step = {world} prompts x 4 generations" in proc.stdout
        if stage == "eval":
            assert option(args, "--model_type") == "hf"
    assert "lazy_preprocess" not in proc.stdout and "offload" not in proc.stdout


@pytest.mark.parametrize("stage", ["sft", "grpo", "eval"])
def test_slurm_job_gives_every_node_its_rank(fake_bin, stage):
    # Not a dry run: srun (here a stand-in running the command once per node) starts torchrun on each node, and the
    # node rank is read on that node, not expanded once on the first.
    module, recipes = STAGES[stage]
    env = {**slurm_env(2), "DRY_RUN": "0", "SLURM_CPUS_PER_TASK": "32"}
    proc = launch(fake_bin, f"{stage}.slurm", ["--save_steps", "7"], env)
    assert proc.returncode == 0, proc.stderr
    ran = commands(proc.stdout, "torchrun", ran=True)
    assert [option(w, "--node_rank") for w in ran] == ["0", "1"] * len(recipes)
    assert all(after_module(w, module)[-2:] == ["--save_steps", "7"] for w in ran)
    assert not commands(proc.stdout, "python", ran=True)


@pytest.mark.parametrize(
    ("stage", "launcher"),
    [
        ("pretrain", ["deepspeed", "--num_gpus", "4", "--master_port", "29400", "--module", "tinyrs_sft.train"]),
        ("sft", ["deepspeed", "--num_gpus", "4", "--master_port", "29400", "--module", "tinyrs_sft.train"]),
        ("cot_sft", ["deepspeed", "--num_gpus", "4", "--master_port", "29400", "--module", "tinyrs_sft.train"]),
        ("grpo", ["torchrun", "--standalone", "--nproc_per_node", "4", "-m", "tinyrs_grpo.train"]),
        (
            "eval",
            ["accelerate", "launch", "--num_processes", "1", "--mixed_precision", "bf16", "-m", "tinyrs_eval.run"],
        ),
    ],
)
def test_one_node_scripts_run_the_recipe(fake_bin, stage, launcher):
    module, recipes = STAGES[stage]
    proc = launch(fake_bin, f"{stage}.sh", [], {"DRY_RUN": "0"})
    assert proc.returncode == 0, proc.stderr
    ran = commands(proc.stdout, launcher[0], ran=True)
    assert len(ran) == len(recipes)
    for words, recipe in zip(ran, recipes):
        args = after_module(words, module)
        assert words[: len(launcher)] == launcher and option(args, "--config") == str(REPO / recipe)
        # Flags only for paths (eval: also the backend it picked); the recipe holds every setting.
        assert {a for a in args if a.startswith("--")} <= {
            "--config",
            "--deepspeed",
            "--output_dir",
            "--run_name",
            "--model_type",
            "--model_name_or_path",
        }


def test_sft_script_paths_and_layout_from_the_environment(fake_bin, tmp_path):
    env = {"DRY_RUN": "0", "MODEL_NAME": "M", "DATA_PATH": "d.json", "IMAGE_FOLDER": "img", "OUTPUT_DIR": "out"}
    # The seed's NUM_DEVICES: one GPU keeps the global batch of 128 with 8 accumulation steps.
    proc = launch(fake_bin, "sft.sh", [], {**env, "NUM_DEVICES": "1", "DEEPSPEED_CONFIG": "z.json"})
    assert proc.returncode == 0, proc.stderr
    (words,) = commands(proc.stdout, "deepspeed", ran=True)
    assert option(words, "--num_gpus") == "1" and option(words, "--gradient_accumulation_steps") == "8"
    pairs = {"--model_name_or_path": "M", "--dataset_name": "d.json", "--image_folder": "img", "--output_dir": "out"}
    assert all(option(words, k) == v for k, v in {**pairs, "--deepspeed": "z.json"}.items())
    # A layout that cannot keep the global batch is refused in one line.
    proc = launch(fake_bin, "sft.slurm", [], {**slurm_env(2), "GLOBAL_BATCH_SIZE": "100"})
    assert proc.returncode == 2 and "a global batch of 100 is not 16 per device x 8 processes" in proc.stderr
    assert not commands(proc.stdout, "python", ran=True)


def test_nodes_flag(fake_bin):
    # Outside SLURM (a login node): --nodes N previews the run; MASTER_ADDR names the first node.
    proc = launch(fake_bin, "grpo.slurm", ["--nodes", "2"], {"DRY_RUN": "1", "MASTER_ADDR": "10.0.0.1"})
    assert proc.returncode == 0, proc.stderr
    printed = commands(proc.stdout, "torchrun")
    assert [option(w, "--node_rank") for w in printed] == ["0", "1"]
    assert {option(w, "--rdzv_endpoint") for w in printed} == {"10.0.0.1:29500"}
    assert "--nodes" not in printed[0] and option(printed[0], "--nnodes") == "2"
    # Inside a job it must match the allocation.
    proc = launch(fake_bin, "sft.slurm", ["--nodes=2"], {**slurm_env(1), "DRY_RUN": "0"})
    assert proc.returncode == 2 and "submit with sbatch --nodes 2 scripts/sft.slurm" in proc.stderr
    assert not commands(proc.stdout, "torchrun", ran=True)
    # A real multi-node start outside SLURM needs the first node's address.
    proc = launch(fake_bin, "sft.slurm", ["--nodes", "2"], {"DRY_RUN": "0"})
    assert proc.returncode == 2 and "set MASTER_ADDR" in proc.stderr
    # Without SLURM each node runs the script itself with its NODE_RANK.
    proc = launch(fake_bin, "sft.slurm", ["--nodes", "2"], {"MASTER_ADDR": "h0", "NODE_RANK": "1"})
    assert proc.returncode == 0 and option(commands(proc.stdout, "torchrun", ran=True)[0], "--node_rank") == "1"
    # The one-node scripts point to the SLURM ones; a bad count is refused.
    proc = launch(fake_bin, "cot_sft.sh", ["--nodes", "4"], {})
    assert proc.returncode == 2 and "sbatch --nodes 4 scripts/cot_sft.slurm" in proc.stderr
    proc = launch(fake_bin, "eval.slurm", ["--nodes", "two"], {"DRY_RUN": "1"})
    assert proc.returncode == 2 and "--nodes takes a positive number, got 'two'" in proc.stderr


def test_every_stage_has_both_scripts():
    texts = {}
    for stage in STAGES:
        for suffix in (".sh", ".slurm"):
            path = REPO / "scripts" / f"{stage}{suffix}"
            texts[path.name] = path.read_text(encoding="utf-8")
            assert "_launch.sh" in texts[path.name] and f"STAGE={stage}\n" in texts[path.name]
            assert subprocess.run(["bash", "-n", str(path)], capture_output=True).returncode == 0
        slurm = texts[f"{stage}.slurm"]
        for header in ("#SBATCH --nodes=", "#SBATCH --ntasks-per-node=1", "#SBATCH --gres=gpu:4", "#SBATCH --time="):
            assert header in slurm, f"{stage}.slurm lacks {header}"
        assert "launch_nodes" in slurm and "launch_one_node" in texts[f"{stage}.sh"]
    helper = (REPO / "scripts" / "_launch.sh").read_text(encoding="utf-8")
    for text in [*texts.values(), helper]:
        assert "zero3_offload" not in text and "lazy_preprocess" not in text and "huggingface-cli" not in text
    # The bash lives in the helper: each stage script is a header and three or four lines.
    assert all(sum(1 for line in t.splitlines() if line and not line.startswith("#")) <= 6 for t in texts.values())


def test_download_commands_exist():
    # huggingface-hub 2.x ships `hf`; `huggingface-cli` is gone. A dataset download names the folder it fills.
    listed = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True)
    if listed.returncode != 0:
        pytest.skip("not a git checkout")
    suffixes = (".md", ".sh", ".slurm", ".yaml", ".yml", ".py", ".txt", ".toml", ".cfg")
    files = [REPO / f for f in listed.stdout.splitlines() if f.endswith(suffixes) and not f.startswith("tests/")]
    bad = []
    for path in files:
        if not path.is_file():
            continue
        for n, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
            if "huggingface-cli" in line or (
                "hf download" in line and "--repo-type dataset" in line and "--local-dir" not in line
            ):
                bad.append(f"{path.relative_to(REPO)}:{n}: {line.strip()}")
    assert not bad, "\n".join(bad)
