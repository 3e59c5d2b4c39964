"""SIGKILL between checkpoints, then the same command again: SFT and GRPO resume from the newest complete
checkpoint (optimizer, scheduler, step and data order restored) and end exactly where an uninterrupted run ends;
a half-written checkpoint folder is never resumed from.

The killed run is a forked copy of the test process (a real SIGKILL from the parent as soon as a checkpoint is on
disk), which avoids re-importing torch/transformers for every run on the shared 2-core machine; the restart is the
same command line, in-process.
"""

from __future__ import annotations

import json
import shutil
import signal
from pathlib import Path

import pytest
import torch

from helpers import call_cli, png_bytes, run_forked, save_grpo_dataset, single_torch_thread


# ---------------------------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------------------------
def steps_logged(state: dict, key: str) -> dict[int, float]:
    return {h["step"]: h[key] for h in state["log_history"] if key in h}


def weights(folder: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(folder / "model.safetensors"))


def assert_same_weights(a: Path, b: Path, atol: float = 1e-6) -> None:
    wa, wb = weights(a), weights(b)
    assert wa.keys() == wb.keys()
    worst = max((wa[k].float() - wb[k].float()).abs().max().item() for k in wa)
    assert worst <= atol, f"final weights differ by up to {worst}"


def fake_half_written_checkpoint(output_dir: Path, source: Path, step: int) -> Path:
    """A checkpoint folder as a kill in the middle of the Trainer's save leaves it: weights cut short, no
    trainer_state.json (written last)."""
    target = output_dir / f"checkpoint-{step}"
    if target.exists():
        return target
    shutil.copytree(source, target)
    (target / "trainer_state.json").unlink()
    data = (target / "model.safetensors").read_bytes()
    (target / "model.safetensors").write_bytes(data[: len(data) // 3])
    return target


def newest_complete(output_dir: Path) -> int:
    steps = [int(p.name.split("-")[1]) for p in output_dir.glob("checkpoint-*") if (p / "trainer_state.json").exists()]
    return max(steps, default=0)


# ---------------------------------------------------------------------------------------------------------------
# SFT
# ---------------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def sft_data(tmp_path_factory) -> Path:
    from PIL import Image

    root = tmp_path_factory.mktemp("sft_kill_data")
    (root / "images").mkdir()
    records = []
    for i in range(12):
        Image.new("RGB", (56, 56), (20 * i, 100, 255 - 20 * i)).save(root / "images" / f"{i}.png")
        records.append({"id": f"r{i}", "image": f"{i}.png", "conversations": [
            {"from": "human", "value": "<image>\n{CLS} What is this?"},
            {"from": "gpt", "value": ["forest", "river", "farmland"][i % 3]}]})  # fmt: skip
    (root / "sft.json").write_text(json.dumps(records))
    return root


def sft_argv(model: Path, data: Path, out: Path) -> list[str]:
    return ["train", "--model_id", str(model), "--data_path", str(data / "sft.json"), "--image_folder",
            str(data / "images"), "--output_dir", str(out), "--use_cpu", "True", "--report_to", "none",
            "--per_device_train_batch_size", "2", "--num_train_epochs", "2", "--learning_rate", "1e-3",
            "--lr_scheduler_type", "cosine", "--warmup_steps", "2", "--logging_steps", "1", "--save_strategy",
            "steps", "--save_steps", "2", "--disable_tqdm", "True", "--dataloader_num_workers", "0",
            "--tune_merger", "True", "--seed", "0"]  # fmt: skip


@pytest.fixture(scope="module")
def sft_reference(tiny_model_dir: Path, sft_data: Path, tmp_path_factory) -> Path:
    """The uninterrupted run: 12 records, batch 2, 2 epochs = 12 optimizer steps, a checkpoint every 2."""
    from tinyrs_sft.cli import main

    out = tmp_path_factory.mktemp("sft_ref") / "out"
    with single_torch_thread():
        assert call_cli(main, sft_argv(tiny_model_dir, sft_data, out)) == 0
    return out


def test_sft_sigkill_then_same_command_resumes(tiny_model_dir, sft_data, sft_reference, tmp_path, caplog):
    from tinyrs_sft.cli import main

    out = tmp_path / "out"
    argv = sft_argv(tiny_model_dir, sft_data, out)
    status = run_forked(
        lambda: call_cli(main, argv), kill_when=lambda: (out / "checkpoint-4" / "trainer_state.json").exists()
    )
    assert status == -signal.SIGKILL
    assert not (out / "model.safetensors").exists(), "the killed run must not have finished"
    done = newest_complete(out)
    assert done >= 4
    # a save cut short after the newest complete checkpoint (the kill may also have left a real one)
    half = fake_half_written_checkpoint(out, out / f"checkpoint-{done}", done + 2)

    with caplog.at_level("WARNING"):
        assert call_cli(main, argv) == 0  # the same command again
    assert any(half.name in r.getMessage() and "incomplete" in r.getMessage() for r in caplog.records)

    ref = json.loads((sft_reference / "trainer_state.json").read_text())
    got = json.loads((out / "trainer_state.json").read_text())
    assert got["global_step"] == ref["global_step"] == 12  # same number of optimizer steps
    assert steps_logged(got, "learning_rate") == steps_logged(ref, "learning_rate")  # scheduler restored
    ref_loss, got_loss = steps_logged(ref, "loss"), steps_logged(got, "loss")
    assert sorted(got_loss) == list(range(1, 13))  # every step once
    for step in ref_loss:  # same batches in the same order with the same optimizer state
        assert got_loss[step] == pytest.approx(ref_loss[step], rel=1e-4, abs=1e-5), step
    assert_same_weights(sft_reference, out, atol=1e-4)
    assert (half / "trainer_state.json").is_file()  # the half-written folder was rewritten by the resumed run


def test_sft_incomplete_checkpoint_is_never_chosen(tmp_path: Path, sft_reference: Path) -> None:
    from tinyrs_sft.checkpoints import OutputDirError, checkpoint_problem, last_complete_checkpoint, resolve_resume

    out = tmp_path / "run"
    out.mkdir()
    shutil.copytree(sft_reference / "checkpoint-4", out / "checkpoint-4")
    for step, damage in ((6, "no_state"), (8, "cut_state"), (10, "no_weights"), (12, "wrong_step")):
        folder = out / f"checkpoint-{step}"
        shutil.copytree(sft_reference / "checkpoint-4", folder)
        if damage == "no_state":
            (folder / "trainer_state.json").unlink()
        elif damage == "cut_state":
            text = (folder / "trainer_state.json").read_text()
            (folder / "trainer_state.json").write_text(text[: len(text) // 2])
        elif damage == "no_weights":
            (folder / "model.safetensors").unlink()
        # wrong_step: checkpoint-12 holds step 4's state (a copy, not a save)
        assert checkpoint_problem(folder) is not None, damage
    assert last_complete_checkpoint(out) == str(out / "checkpoint-4")
    assert resolve_resume(None, str(out)) == str(out / "checkpoint-4")
    assert resolve_resume("false", str(out)) is None
    with pytest.raises(OutputDirError, match="incomplete checkpoint"):
        resolve_resume(str(out / "checkpoint-8"), str(out))


# ---------------------------------------------------------------------------------------------------------------
# GRPO
# ---------------------------------------------------------------------------------------------------------------
REWARD_MODULE = """
def varying_reward(completions, **kwargs):
    texts = [c[0]["content"] if isinstance(c, list) else c for c in completions]
    return [float(len(t) % 5) / 4.0 for t in texts]
"""


@pytest.fixture(scope="module")
def grpo_setup(tmp_path_factory):
    import base64

    root = tmp_path_factory.mktemp("grpo_kill")
    (root / "rel_kill_rewards.py").write_text(REWARD_MODULE)

    rows = []
    for i in range(8):
        png = png_bytes((30 * i, 80, 200 - 20 * i))
        rows.append({"image": {"bytes": png, "path": None}, "problem": f"{{VQA}} Is there a ship? ({i})",
                     "solution": ["1", "yes" if i % 2 else "no", "", base64.b64encode(png).decode()]})  # fmt: skip
    data = save_grpo_dataset(root / "data", rows)
    with pytest.MonkeyPatch.context() as mp:  # the module-scoped form of the monkeypatch fixture
        mp.syspath_prepend(str(root))
        yield data


def grpo_argv(model: Path, data: Path, out: Path) -> list[str]:
    return ["train", "--model_name_or_path", str(model), "--dataset_name", str(data), "--output_dir", str(out),
            "--use_cpu", "true", "--bf16", "false", "--gradient_checkpointing", "false", "--report_to", "none",
            "--per_device_train_batch_size", "2", "--num_generations", "2", "--max_completion_length", "8",
            "--learning_rate", "1e-3", "--lr_scheduler_type", "linear", "--loss_type", "grpo", "--beta", "0.001",
            "--logging_steps", "1", "--max_pixels", str(56 * 56), "--reward_funcs", "accuracy", "format",
            "rel_kill_rewards.varying_reward", "--judge", "none", "--seed", "0", "--disable_tqdm", "true",
            "--max_steps", "6", "--save_steps", "2"]  # fmt: skip


def train_log_steps(out: Path) -> list[int]:
    lines = (out / "train_log.jsonl").read_text().splitlines()
    return [json.loads(line)["step"] for line in lines if "reward" in json.loads(line)]


@pytest.fixture(scope="module")
def grpo_reference(tiny_model_dir, grpo_setup, tmp_path_factory) -> Path:
    from tinyrs_grpo.cli import main

    out = tmp_path_factory.mktemp("grpo_ref") / "out"
    with single_torch_thread():
        assert call_cli(main, grpo_argv(tiny_model_dir, grpo_setup, out)) == 0
    return out


def test_grpo_sigkill_then_same_command_resumes(tiny_model_dir, grpo_setup, grpo_reference, tmp_path, caplog):
    from tinyrs_grpo.cli import main

    out = tmp_path / "out"
    argv = grpo_argv(tiny_model_dir, grpo_setup, out)
    status = run_forked(
        lambda: call_cli(main, argv), kill_when=lambda: (out / "checkpoint-2" / "trainer_state.json").exists()
    )
    assert status == -signal.SIGKILL
    assert not (out / "model.safetensors").exists()
    done = newest_complete(out)
    assert done >= 2
    half = fake_half_written_checkpoint(out, out / f"checkpoint-{done}", done + 2) if done + 2 <= 6 else None

    with caplog.at_level("INFO"):
        assert call_cli(main, argv) == 0  # the same command again: resumes by itself
    assert any(f"resuming from {out / f'checkpoint-{done}'}" in r.getMessage() for r in caplog.records)
    if half is not None:
        assert any(half.name in r.getMessage() and "incomplete" in r.getMessage() for r in caplog.records)

    ref = json.loads((grpo_reference / "checkpoint-6" / "trainer_state.json").read_text())
    got = json.loads((out / "checkpoint-6" / "trainer_state.json").read_text())
    assert got["global_step"] == ref["global_step"] == 6
    assert steps_logged(got, "learning_rate") == steps_logged(ref, "learning_rate")
    assert sorted(steps_logged(got, "reward")) == list(range(1, 7))
    # the metrics log has each step exactly once, although the killed run may have logged steps after `done`
    assert train_log_steps(out) == list(range(1, 7))
    # same prompts, same sampled completions (RNG state restored), same rewards and loss
    for key in ("reward", "loss", "completions/mean_length"):
        ref_values, got_values = steps_logged(ref, key), steps_logged(got, key)
        for step in ref_values:
            assert got_values[step] == pytest.approx(ref_values[step], rel=1e-4, abs=1e-5), (key, step)
