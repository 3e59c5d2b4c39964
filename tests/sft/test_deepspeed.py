"""Training under DeepSpeed ZeRO-3 on CPU in a subprocess (gloo), as the paper's recipe runs on GPUs.

The first DeepSpeed run on a machine compiles a shared-memory op (25-50 s, cached afterwards); only one ZeRO-3 run
is in the default suite (the module-scoped ``zero3_run``, shared by the tests after it), the launcher/2-rank and
offload variants are marked slow.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from helpers import free_port, make_image, simple_record, single_torch_thread, subprocess_env, write_json


SFT_DIR = Path(__file__).resolve().parents[2] / "sft"


def ds_env(single_process: bool) -> dict[str, str]:
    env = subprocess_env(DS_ACCELERATOR="cpu")
    if single_process:  # no launcher: torch.distributed needs these, or DeepSpeed looks for mpi4py
        env.update(RANK="0", LOCAL_RANK="0", WORLD_SIZE="1", MASTER_ADDR="127.0.0.1", MASTER_PORT=str(free_port()))
    return env


def train_args(model_dir: Path, data: Path, images: Path, out: Path, ds_config: str, *extra: str) -> list[str]:
    return [
        "--deepspeed", str(SFT_DIR / "configs" / "deepspeed" / ds_config),
        "--model_id", str(model_dir),
        "--data_path", str(data),
        "--image_folder", str(images),
        "--output_dir", str(out),
        "--use_cpu", "True",
        "--report_to", "none",
        "--max_steps", "3",
        "--per_device_train_batch_size", "2",
        "--learning_rate", "1e-3",
        "--vision_lr", "2e-4",
        "--tune_merger", "True",
        "--logging_steps", "1",
        "--save_strategy", "steps",
        "--save_steps", "2",
        "--image_max_pixels", "12544",
        "--disable_tqdm", "True",
        *extra,
    ]  # fmt: skip


def run(cmd: list[str], env: dict[str, str], timeout: int = 600) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-6000:]
    return proc


def assert_checkpoint_generates(folder: Path, image: Path) -> None:
    from PIL import Image
    from transformers import AutoModelForImageTextToText, AutoProcessor

    names = {p.name for p in folder.iterdir()}
    assert {"model.safetensors", "config.json", "generation_config.json", "chat_template.jinja"} <= names, names
    model = AutoModelForImageTextToText.from_pretrained(folder)
    processor = AutoProcessor.from_pretrained(folder)
    # ZeRO-3 gathered real weights (a placeholder save would leave empty tensors or fail to load).
    assert all(p.numel() > 0 for p in model.parameters())
    messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "What is this?"}]}]
    text = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    inputs = processor(text=[text], images=[Image.open(image)], return_tensors="pt")
    out = model.generate(**inputs, max_new_tokens=4, do_sample=False)
    assert out.shape[1] > inputs["input_ids"].shape[1]


@pytest.fixture
def ds_data(data_dir: Path) -> Path:
    return write_json(data_dir / "train.json", [simple_record(i, image="abc"[i % 3] + ".png") for i in range(6)])


def tied_variant(model_dir: Path, out: Path) -> Path:
    """``model_dir`` (the tiny checkpoint) with its output layer tied to the input embedding, as in Qwen2-VL-2B,
    written by ``save_pretrained`` (no ``lm_head.weight`` in the file)."""
    from transformers import AutoModelForImageTextToText

    shutil.copytree(model_dir, out)
    for old in out.glob("model*.safetensors*"):
        old.unlink()
    untied = AutoModelForImageTextToText.from_pretrained(model_dir)
    untied.config.tie_word_embeddings = True
    tied = type(untied)(untied.config)
    weights = {k: v for k, v in untied.state_dict().items() if k != "lm_head.weight"}
    assert tied.load_state_dict(weights, strict=False).missing_keys == ["lm_head.weight"]
    tied.tie_weights()
    assert tied.lm_head.weight is tied.get_input_embeddings().weight
    tied.save_pretrained(out)
    return out


def plain_save_shapes(model_dir: Path, out: Path) -> dict[str, tuple[int, ...]]:
    """``{tensor name: shape}`` that ``from_pretrained(model_dir).save_pretrained(out)`` writes (no DeepSpeed)."""
    from transformers import AutoModelForImageTextToText

    AutoModelForImageTextToText.from_pretrained(model_dir).save_pretrained(out)
    return saved_shapes(out)


def saved_shapes(folder: Path) -> dict[str, tuple[int, ...]]:
    from safetensors import safe_open

    shapes = {}
    for path in sorted(folder.glob("*.safetensors")):
        with safe_open(str(path), "pt") as handle:
            shapes.update({k: tuple(handle.get_slice(k).get_shape()) for k in handle.keys()})
    return shapes


@pytest.fixture(scope="module")
def zero3_run(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """One single-process ZeRO-3 run of three steps (checkpoint-2 and the final model) from the tiny model with tied
    embeddings; the tests below read its output."""
    root = tmp_path_factory.mktemp("zero3")
    make_image(root / "images" / "a.png", (56, 56))
    make_image(root / "images" / "b.png", (112, 112), (200, 30, 30))
    make_image(root / "images" / "c.png", (56, 112), (30, 30, 200))
    data = write_json(root / "train.json", [simple_record(i, image="abc"[i % 3] + ".png") for i in range(6)])
    with single_torch_thread():
        model_dir = tied_variant(tiny_model_dir, root / "tied")
    out = root / "out"
    cmd = [sys.executable, "-m", "tinyrs_sft.train", *train_args(model_dir, data, root / "images", out, "zero3.json")]
    proc = run(cmd, ds_env(single_process=True))
    return {"proc": proc, "out": out, "model_dir": model_dir, "images": root / "images", "root": root}


def test_zero3_single_process_checkpoint_reloads_and_generates(zero3_run):
    out, proc = zero3_run["out"], zero3_run["proc"]
    assert "param group vision decay" in proc.stderr and "lr=0.0002" in proc.stderr
    state = json.loads((out / "trainer_state.json").read_text())
    assert state["global_step"] == 3
    assert all(torch.isfinite(torch.tensor(e["loss"])) for e in state["log_history"] if "loss" in e)
    assert_checkpoint_generates(out / "checkpoint-2", zero3_run["images"] / "b.png")
    assert_checkpoint_generates(out, zero3_run["images"] / "b.png")


def test_zero3_saves_the_tensor_names_of_a_plain_save_pretrained(zero3_run, one_thread):
    # transformers' ZeRO-3 loader kept unused key renamings that, reversed at save, named the language model
    # model.model.* (tinyrs_sft.checkpoints.keep_used_weight_conversions); loaders of the standard layout need these.
    expected = plain_save_shapes(zero3_run["model_dir"], zero3_run["root"] / "plain")
    assert "lm_head.weight" not in expected and "model.layers.0.mlp.up_proj.weight" in expected  # tied, standard
    for folder in (zero3_run["out"] / "checkpoint-2", zero3_run["out"]):
        shapes = saved_shapes(folder)
        assert not [k for k in shapes if k.startswith("model.model.")], folder
        assert shapes == expected, (folder, sorted(set(shapes) ^ set(expected))[:6])


def test_zero3_checkpoint_loads_cleanly_with_the_trained_weights(zero3_run, one_thread):
    from deepspeed.utils.zero_to_fp32 import get_fp32_state_dict_from_zero_checkpoint
    from transformers import AutoModelForImageTextToText

    out = zero3_run["out"]
    base = AutoModelForImageTextToText.from_pretrained(zero3_run["model_dir"]).state_dict()
    loaded = {}
    for name, folder in (("step 2", out / "checkpoint-2"), ("final", out)):
        model, info = AutoModelForImageTextToText.from_pretrained(folder, output_loading_info=True)
        assert not info["missing_keys"] and not info["unexpected_keys"] and not info["mismatched_keys"], info
        assert model.lm_head.weight is model.get_input_embeddings().weight  # still tied
        loaded[name] = model.state_dict()
    # checkpoint-2 holds exactly the weights of DeepSpeed's own (fp32, partitioned) checkpoint of that step...
    trained = get_fp32_state_dict_from_zero_checkpoint(str(out / "checkpoint-2"))
    assert set(trained) == set(loaded["step 2"])
    assert [k for k in trained if not torch.equal(trained[k], loaded["step 2"][k])] == []
    # ...which moved from the base weights, and the final model (step 3) moved on from it
    for before, after in ((base, loaded["step 2"]), (loaded["step 2"], loaded["final"])):
        assert sum(not torch.equal(before[k], after[k]) for k in base) > len(base) // 2


@pytest.mark.slow
def test_zero3_launcher_two_ranks_with_text_only_batches(tiny_model_dir, data_dir, tmp_path):
    # One image record among text-only ones: at its step one rank has an image and the other none; the collator's
    # one-token zero image keeps the ranks' ZeRO-3 weight gathers in the same order (without it gloo aborts).
    records = [simple_record(i, image=("a.png" if i == 0 else None)) for i in range(8)]
    data = write_json(data_dir / "mixed.json", records)
    out = tmp_path / "zero3x2"
    launcher = shutil.which("deepspeed") or str(Path(sys.executable).parent / "deepspeed")
    cmd = [
        launcher, "--num_gpus", "2", "--master_port", str(free_port()), "--module", "tinyrs_sft.train",
        *train_args(tiny_model_dir, data, data_dir / "images", out, "zero3.json"),
        "--per_device_train_batch_size", "1", "--max_steps", "4",
    ]  # fmt: skip
    run(cmd, ds_env(single_process=False), timeout=900)
    assert_checkpoint_generates(out, data_dir / "images" / "a.png")


@pytest.mark.slow
def test_zero3_offload_uses_cpu_adam_with_groups(tiny_model_dir, ds_data, data_dir, tmp_path):
    out = tmp_path / "zero3_offload"
    cmd = [
        sys.executable, "-m", "tinyrs_sft.train",
        *train_args(tiny_model_dir, ds_data, data_dir / "images", out, "zero3_offload.json"),
    ]  # fmt: skip
    proc = run(cmd, ds_env(single_process=True), timeout=900)
    assert "DeepSpeedCPUAdam" in proc.stderr and "lr=0.0002" in proc.stderr
    assert_checkpoint_generates(out, data_dir / "images" / "b.png")
