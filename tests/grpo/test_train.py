"""GRPO training on CPU with the tiny Qwen2-VL: steps, learning, checkpoints, resume, judge, ZeRO-3."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from helpers import free_port, grpo_row, save_grpo_dataset
from tinyrs_grpo.cli import main as cli_main
from tinyrs_grpo.train import main, make_parser


REPO = Path(__file__).resolve().parents[2]
SECRET = "sk-test-NEVER-WRITTEN-4f2a9c"

VARYING_REWARD = '''
def varying_reward(completions, **kwargs):
    """A reward with variance inside every group: a random tiny model never earns the real ones."""
    texts = [c[0]["content"] if isinstance(c, list) else c for c in completions]
    return [float(len(t) % 5) / 4.0 for t in texts]
'''


def common_args(model_dir: Path, data_dir: Path, output_dir: Path, reward_module: str) -> list[str]:
    return [
        "--model_name_or_path", str(model_dir),
        "--dataset_name", str(data_dir),
        "--output_dir", str(output_dir),
        "--use_cpu", "true",
        "--bf16", "false",
        "--gradient_checkpointing", "false",
        "--report_to", "none",
        "--per_device_train_batch_size", "2",
        "--num_generations", "2",
        "--max_completion_length", "12",
        "--learning_rate", "1e-3",
        "--loss_type", "grpo",
        "--beta", "0.001",
        "--logging_steps", "1",
        "--reward_funcs", "accuracy", "format", f"{reward_module}.varying_reward",
        "--judge", "none",
        "--seed", "0",
        "--disable_tqdm", "true",
    ]  # fmt: skip


def train(args: list[str]):
    script_args, training_args, model_args = make_parser().parse_args_and_config(args=args)
    return main(script_args, training_args, model_args)


def read_log(output_dir: Path) -> list[dict]:
    path = output_dir / "train_log.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.fixture(scope="module")
def reward_module(tmp_path_factory: pytest.TempPathFactory):
    folder = tmp_path_factory.mktemp("reward_module")
    (folder / "grpo_train_test_rewards.py").write_text(VARYING_REWARD)
    with pytest.MonkeyPatch.context() as mp:  # the module-scoped form of the monkeypatch fixture
        mp.syspath_prepend(str(folder))
        yield "grpo_train_test_rewards"


SFT_BOUNDS = (6272, 112 * 112)  # what the "SFT stage" saved: neither the processor defaults nor any flag's default


def sft_checkpoint(tiny_model_dir: Path, folder: Path) -> Path:
    """The tiny model as an SFT stage leaves it: its processor saved with non-default pixel bounds."""
    from transformers import AutoProcessor

    shutil.copytree(tiny_model_dir, folder)
    processor = AutoProcessor.from_pretrained(folder)
    processor.image_processor.size = {"shortest_edge": SFT_BOUNDS[0], "longest_edge": SFT_BOUNDS[1]}
    processor.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def trained(tiny_model_dir: Path, demo_data_dir: Path, reward_module: str, tmp_path_factory) -> dict:
    """Two GRPO steps from an "SFT" checkpoint with non-default pixel bounds and no pixel flag, per-device batch 2,
    2 generations, a checkpoint after each step."""
    model_dir = sft_checkpoint(tiny_model_dir, tmp_path_factory.mktemp("sft") / "model")
    output_dir = tmp_path_factory.mktemp("grpo_run") / "out"
    args = common_args(model_dir, demo_data_dir / "grpo", output_dir, reward_module)
    trainer = train([*args, "--max_steps", "2", "--save_steps", "1", "--log_completions", "true"])
    return {"output_dir": output_dir, "trainer": trainer, "args": args, "model_dir": model_dir}


def saved_bounds(folder: Path) -> tuple[int, int]:
    """The pixel bounds in a checkpoint's processor files (transformers 5 nests them in processor_config.json;
    older checkpoints have preprocessor_config.json)."""
    if (folder / "preprocessor_config.json").is_file():
        size = json.loads((folder / "preprocessor_config.json").read_text())["size"]
    else:
        size = json.loads((folder / "processor_config.json").read_text())["image_processor"]["size"]
    return size["shortest_edge"], size["longest_edge"]


def test_sft_pixel_bounds_survive_grpo_and_reach_eval(trained: dict) -> None:
    """SFT -> GRPO -> eval hand-off: the bounds the SFT checkpoint saved are the ones GRPO trains with, saves, and
    the evaluation loader uses (no --min_pixels/--max_pixels anywhere)."""
    from tinyrs_eval.backends import GenerationSettings
    from tinyrs_eval.backends.hf import HFBackend
    from tinyrs_eval.prompts import ChatTemplate

    trainer = trained["trainer"]
    size = trainer.processing_class.image_processor.size
    assert (size["shortest_edge"], size["longest_edge"]) == SFT_BOUNDS  # in force during training
    for folder in (trained["output_dir"], trained["output_dir"] / "checkpoint-2"):
        assert saved_bounds(folder) == SFT_BOUNDS
    backend = HFBackend(str(trained["output_dir"]), GenerationSettings(max_new_tokens=2), ChatTemplate())
    size = backend.processor.image_processor.size
    assert (size["shortest_edge"], size["longest_edge"]) == SFT_BOUNDS


def test_two_steps_log_every_metric(trained: dict) -> None:
    log = [r for r in read_log(trained["output_dir"]) if "reward" in r]
    assert [r["step"] for r in log] == [1, 2]
    for record in log:
        for key in (
            "rewards/accuracy_reward/mean",
            "rewards/format_reward/mean",
            "rewards/varying_reward/mean",
            "reward",
            "reward_std",
            "frac_reward_zero_std",
            "completions/mean_length",
            "kl",
        ):
            assert key in record, key
    assert any(r["reward_std"] > 0 for r in log)  # the rewards vary, so the gradient is not zero
    assert list((trained["output_dir"] / "completions").glob("*.parquet"))  # log_completions samples


def changed_parameters(before_dir: Path, after_dir: Path) -> int:
    """Number of parameter tensors that differ between two checkpoints (both must load without missing keys)."""
    from transformers import AutoModelForImageTextToText

    models = []
    for folder in (before_dir, after_dir):
        model, info = AutoModelForImageTextToText.from_pretrained(folder, output_loading_info=True)
        assert not info["missing_keys"] and not info["unexpected_keys"], info
        models.append(model.state_dict())
    before, after = models
    assert before.keys() == after.keys()
    return sum(not torch.equal(before[k], after[k].to(before[k].dtype)) for k in before)


def tensor_shapes(folder: Path) -> dict[str, tuple[int, ...]]:
    """``{tensor name: shape}`` of the weight files in ``folder``."""
    from safetensors import safe_open

    shapes = {}
    for path in sorted(folder.glob("*.safetensors")):
        with safe_open(str(path), "pt") as handle:
            shapes.update({k: tuple(handle.get_slice(k).get_shape()) for k in handle.keys()})
    return shapes


def test_policy_parameters_changed(trained: dict, tiny_model_dir: Path) -> None:
    from safetensors.torch import load_file

    n_tensors = len(load_file(str(tiny_model_dir / "model.safetensors")))
    assert changed_parameters(tiny_model_dir, trained["output_dir"]) > n_tensors // 2


def test_checkpoint_reloads_and_generates(trained: dict) -> None:
    from PIL import Image
    from transformers import AutoModelForImageTextToText, AutoProcessor

    output_dir = trained["output_dir"]
    for folder in (output_dir, output_dir / "checkpoint-2"):
        model = AutoModelForImageTextToText.from_pretrained(folder)
        processor = AutoProcessor.from_pretrained(folder)
        assert processor.image_processor.size["longest_edge"] == 112 * 112  # the bounds travel with the checkpoint
        messages = [{"role": "user", "content": [{"type": "image", "image": Image.new("RGB", (448, 448))},
                                                 {"type": "text", "text": "{VQA} Is there a ship?"}]}]  # fmt: skip
        inputs = processor.apply_chat_template(
            [messages], add_generation_prompt=True, tokenize=True, return_dict=True, return_tensors="pt"
        )
        assert inputs["image_grid_thw"].tolist() == [[1, 8, 8]]
        out = model.generate(**inputs, max_new_tokens=5, do_sample=False)
        assert out.shape[1] > inputs["input_ids"].shape[1]


def test_save_after_a_zero3_style_load_writes_the_base_tensor_names(trained: dict, tmp_path: Path) -> None:
    """transformers' ZeRO-3 loader also records the key renamings that matched nothing; reversed at save they named the
    language model model.model.*. ResumableGRPOTrainer._save drops them (checkpoints.keep_used_weight_conversions).
    (The real ZeRO-3 run: test_zero3_on_cpu, slow.)"""
    from transformers.conversion_mapping import get_model_conversion_mapping

    trainer = trained["trainer"]
    model = trainer.accelerator.unwrap_model(trainer.model)
    used = [repr(c) for c in model._weight_conversions]
    unused = [c for c in get_model_conversion_mapping(model) if repr(c) not in used]
    assert unused  # what the ZeRO-3 loader adds for Qwen2-VL
    model._weight_conversions = [*model._weight_conversions, *unused]
    trainer.save_model(str(tmp_path / "saved"))
    assert tensor_shapes(tmp_path / "saved") == tensor_shapes(trained["model_dir"])
    assert [repr(c) for c in model._weight_conversions] == used


def test_model_card_names_base_data_recipe_and_stage(trained: dict) -> None:
    """README.md of the output folder is our card, not TRL's stock one ("fine-tuned version of [None]")."""
    card = (trained["output_dir"] / "README.md").read_text()
    assert "[None]" not in card and "fine-tuned version of" not in card
    assert "| stage | GRPO, TinyRS-R1 recipe (TinyRS-CoT -> TinyRS-R1) |" in card
    assert f"| base model | `{trained['model_dir']}` |" in card
    data = trained["args"][trained["args"].index("--dataset_name") + 1]
    n_rows = len(trained["trainer"].train_dataset)
    assert f"| data | `{data}`, {n_rows} training rows after the data check |" in card
    assert "| recipe | command-line flags only (no --config) |" in card
    assert "| steps trained | 2 |" in card
    rewards = "['accuracy', 'format', 'grpo_train_test_rewards.varying_reward']"
    for row in ("| beta | `0.001` |", "| num_generations | `2` |", "| learning_rate | `0.001` |",
                "| max_steps | `2` |", f"| reward_funcs | `{rewards}` |",
                f"| min_pixels / max_pixels | `{SFT_BOUNDS[0]} / {SFT_BOUNDS[1]}` |"):  # fmt: skip
        assert row in card, row
    assert "base_model:" not in card  # a local folder is not a hub id for the hub metadata


def test_resume_from_checkpoint(trained: dict, tmp_path: Path, recwarn: pytest.WarningsRecorder) -> None:
    from tinyrs_grpo.noise import KNOWN_NOISE

    output_dir = tmp_path / "resumed"
    output_dir.mkdir()
    shutil.copytree(trained["output_dir"] / "checkpoint-1", output_dir / "checkpoint-1")
    args = [a if a != str(trained["output_dir"]) else str(output_dir) for a in trained["args"]]
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text("report_to: none\n")
    # through the console-script entry point this time, with a recipe file
    argv = ["train", "--config", str(recipe), *args, "--max_steps", "2", "--save_steps", "1"]
    assert cli_main([*argv, "--resume_from_checkpoint", "last"]) == 0
    assert [r["step"] for r in read_log(output_dir) if "reward" in r] == [2]  # only the missing step ran
    state = json.loads((output_dir / "checkpoint-2" / "trainer_state.json").read_text())
    assert state["global_step"] == 2 and [h["step"] for h in state["log_history"] if "reward" in h] == [1, 2]
    # the entry point filtered the known noise (TRL's gradient_checkpointing default, its generation context)
    noisy = [str(w.message) for w in recwarn if any(str(w.message).startswith(m) for m, _, _ in KNOWN_NOISE)]
    assert noisy == []
    card = (output_dir / "README.md").read_text()
    assert f"| recipe | `{recipe}` plus command-line flags |" in card and "| steps trained | 2 |" in card


def test_judge_in_training_and_key_never_written(
    tiny_model_dir, reward_module, openai_server, tmp_path, monkeypatch, capfd
) -> None:
    """Open-ended rows are judged through a local OpenAI-compatible server; the key appears in no output."""
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    openai_server.behaviour = lambda question, n: {"content": str(len(question) % 11)}
    rows = [grpo_row("0", "", f"Describe scene {i}.", (30 * i, 90, 20)) for i in range(4)]
    data_dir = save_grpo_dataset(tmp_path / "open", rows)
    output_dir = tmp_path / "judged"
    args = common_args(tiny_model_dir, data_dir, output_dir, reward_module)
    args[args.index("--judge") + 1] = "openai"
    trainer = train([*args, "--judge_base_url", openai_server.base_url, "--judge_model", "judge-test",
                     "--max_steps", "1", "--save_steps", "1", "--per_device_train_batch_size", "4"])  # fmt: skip
    assert len(openai_server.requests) >= 1
    assert all(h == f"Bearer {SECRET}" for h in openai_server.auth_headers)
    record = next(r for r in read_log(output_dir) if "reward" in r)
    assert record["judge/requests"] + record["judge/cache_hits"] == 4  # 2 prompts x 2 generations
    assert record["judge/failures"] == 0 and record["rewards/accuracy_reward/mean"] is not None
    captured = capfd.readouterr()
    assert SECRET not in captured.out + captured.err
    assert SECRET not in repr(vars(trainer.args))
    for path in output_dir.rglob("*"):
        if path.is_file():
            assert SECRET.encode() not in path.read_bytes(), path


@pytest.mark.slow
def test_zero3_on_cpu(tiny_model_dir: Path, demo_data_dir: Path, tmp_path: Path) -> None:
    """Two steps under DeepSpeed ZeRO-3 (CPU accelerator, gloo, one process), then reload and compare."""
    (tmp_path / "grpo_zero3_rewards.py").write_text(VARYING_REWARD)
    output_dir = tmp_path / "z3"
    args = common_args(tiny_model_dir, demo_data_dir / "grpo", output_dir, "grpo_zero3_rewards")
    env = dict(
        os.environ,
        DS_ACCELERATOR="cpu",
        RANK="0",
        LOCAL_RANK="0",
        WORLD_SIZE="1",
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(free_port()),
        PYTHONPATH=os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")]),
    )
    cmd = [sys.executable, "-m", "tinyrs_grpo.train", *args, "--max_steps", "2", "--save_steps", "2",
           "--deepspeed", str(REPO / "grpo/configs/deepspeed/zero3.json")]  # fmt: skip
    result = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-4000:]
    assert [r["step"] for r in read_log(output_dir) if "reward" in r] == [1, 2]
    # ZeRO-3's reduce_scatter_tensor / all_gather_into_tensor FutureWarnings (dozens per step) are filtered at start-up
    from tinyrs_grpo.noise import KNOWN_NOISE

    assert [m for m, _, _ in KNOWN_NOISE if m in result.stderr] == []
    assert "tinyrs_grpo: model saved to" in result.stderr  # the log itself was captured

    # consolidated 16-bit weights from ZeRO-3 load completely and differ from the start
    assert changed_parameters(tiny_model_dir, output_dir) > 0
    # ...under the names of a plain save_pretrained (not model.model.*), in the final model and the checkpoint
    for folder in (output_dir, output_dir / "checkpoint-2"):
        assert tensor_shapes(folder) == tensor_shapes(tiny_model_dir), folder


@pytest.mark.slow
def test_zero3_two_ranks_with_the_deepspeed_launcher(
    tiny_model_dir: Path, demo_data_dir: Path, tmp_path: Path
) -> None:
    """Two CPU ranks under the deepspeed launcher (gloo): rewards are gathered across ranks, training completes."""
    (tmp_path / "grpo_zero3_rewards.py").write_text(VARYING_REWARD)
    output_dir = tmp_path / "z3x2"
    args = common_args(tiny_model_dir, demo_data_dir / "grpo", output_dir, "grpo_zero3_rewards")
    env = dict(
        os.environ, DS_ACCELERATOR="cpu", PYTHONPATH=os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])
    )
    launcher = Path(sys.executable).parent / "deepspeed"
    cmd = [str(launcher), "--num_gpus", "2", "--master_port", str(free_port()), "--module", "tinyrs_grpo.train",
           *args, "--max_steps", "2", "--save_steps", "2",
           "--deepspeed", str(REPO / "grpo/configs/deepspeed/zero3.json")]  # fmt: skip
    result = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
    log = [r for r in read_log(output_dir) if "reward" in r]
    assert [r["step"] for r in log] == [1, 2]
    assert changed_parameters(tiny_model_dir, output_dir) > 0
