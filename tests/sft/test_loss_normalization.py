"""--loss_normalization: the gradient of one optimizer step equals the hand-computed gradient of the stated loss.

Two records with very different numbers of supervised tokens, one per micro-batch, gradient accumulation 2, so both
land in the first optimizer step:

* ``global_tokens``: (S1 + S2) / (n1 + n2)   (sum of token losses over every supervised token of the global batch)
* ``micro_batch``:   (S1 / n1 + S2 / n2) / 2 (mean per micro-batch, averaged over the accumulation steps)

and ``per_sample`` with both records in ONE micro-batch (batch 2, no accumulation), where ``micro_batch`` would give
(S1 + S2) / (n1 + n2) but ``per_sample`` must give (S1 / n1 + S2 / n2) / 2.

where S_i is the summed next-token cross-entropy of record i and n_i its supervised-token count.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from transformers import TrainerCallback

from helpers import simple_record, write_json
from tinyrs_sft.config import parse_args


LOSS_RTOL, GRAD_RTOL = 1e-4, 1e-3
SHORT, LONG = "farmland", "a dense residential area with many small houses, two parks and a long road to the river"


class GradientCapture(TrainerCallback):
    """Copies every gradient just before the first optimizer step, and the first logged loss."""

    def __init__(self):
        self.grads: dict[str, torch.Tensor] = {}
        self.loss: float | None = None

    def on_pre_optimizer_step(self, args, state, control, model=None, **kwargs):
        if not self.grads:
            self.grads = {n: p.grad.detach().clone() for n, p in model.named_parameters() if p.grad is not None}

    def on_log(self, args, state, control, logs=None, **kwargs):
        if self.loss is None and logs and "loss" in logs:
            self.loss = logs["loss"]


def token_loss_sums(model, batches) -> list[tuple[torch.Tensor, int]]:
    """(summed cross-entropy, supervised-token count) per batch, computed from the logits by hand."""
    out = []
    for batch in batches:
        labels = batch["labels"]
        inputs = {k: v for k, v in batch.items() if k != "labels"}
        logits = model(**inputs).logits.float()
        shift_logits, shift_labels = logits[:, :-1], labels[:, 1:]
        mask = shift_labels != -100
        total = F.cross_entropy(shift_logits[mask], shift_labels[mask], reduction="sum")
        out.append((total, int(mask.sum())))
    return out


def expected_gradients(model_dir, data_path, image_folder, mode: str) -> tuple[float, dict[str, torch.Tensor]]:
    from transformers import AutoModelForImageTextToText

    from tinyrs_sft.collator import SupervisedCollator
    from tinyrs_sft.data import SupervisedDataset, VisionBounds
    from tinyrs_sft.model import configure_trainable, load_processor
    from tinyrs_sft.records import MediaPolicy, RecordSource

    processor = load_processor(str(model_dir))
    dataset = SupervisedDataset(
        RecordSource(data_path), processor, MediaPolicy(image_folder), VisionBounds(), max_seq_length=4096
    )
    collate = SupervisedCollator(processor.tokenizer, image_processor=processor.image_processor)
    model = AutoModelForImageTextToText.from_pretrained(model_dir, dtype=torch.float32)
    configure_trainable(model, freeze_vision_tower=False, freeze_llm=False, tune_merger=True)
    (s1, n1), (s2, n2) = token_loss_sums(model, [collate([dataset[0]]), collate([dataset[1]])])
    assert n1 != n2 and min(n1, n2) > 0, (n1, n2)  # the test needs uneven token counts
    loss = (s1 + s2) / (n1 + n2) if mode == "global_tokens" else (s1 / n1 + s2 / n2) / 2  # micro_batch, per_sample
    loss.backward()
    return loss.item(), {n: p.grad.detach().clone() for n, p in model.named_parameters() if p.grad is not None}


def trained_gradients(
    monkeypatch, model_dir, data_path, image_folder, out, mode: str, batch: int = 1, accumulation: int = 2
) -> GradientCapture:
    import tinyrs_sft.train as train_module

    capture = GradientCapture()

    class CapturingTrainer(train_module.SFTTrainer):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.add_callback(capture)

    monkeypatch.setattr(train_module, "SFTTrainer", CapturingTrainer)
    argv = [
        "--model_id", str(model_dir), "--data_path", str(data_path), "--image_folder", str(image_folder),
        "--output_dir", str(out), "--use_cpu", "True", "--report_to", "none", "--save_strategy", "no",
        "--disable_tqdm", "True", "--dataloader_num_workers", "0", "--tune_merger", "True", "--seed", "0",
        "--per_device_train_batch_size", str(batch), "--gradient_accumulation_steps", str(accumulation),
        "--max_steps", "1",
        "--logging_steps", "1", "--max_grad_norm", "0", "--learning_rate", "1e-3",
        "--loss_normalization", mode,
    ]  # fmt: skip
    train_module.main(*parse_args(argv))
    return capture


def test_both_normalisations_give_the_gradient_they_document(tiny_model_dir, data_dir, monkeypatch, tmp_path):
    data = write_json(data_dir / "train.json", [simple_record(0, "a.png", SHORT), simple_record(1, "b.png", LONG)])
    images = data_dir / "images"
    expected = {
        mode: expected_gradients(tiny_model_dir, data, images, mode) for mode in ("global_tokens", "micro_batch")
    }
    # The two definitions really differ on this batch (by far more than the tolerances below), so each comparison
    # can fail. (A random model's per-token loss is near ln(vocab) everywhere; the token weights differ more.)
    g_loss, g_grads = expected["global_tokens"]
    m_loss, m_grads = expected["micro_batch"]
    assert abs(g_loss - m_loss) > 20 * LOSS_RTOL * abs(g_loss)
    flat_g = torch.cat([g.flatten() for g in g_grads.values()])
    flat_m = torch.cat([m_grads[n].flatten() for n in g_grads])
    assert (flat_g - flat_m).norm() > 0.1 * flat_g.norm()

    for mode, (loss, grads) in expected.items():
        capture = trained_gradients(monkeypatch, tiny_model_dir, data, images, tmp_path / mode, mode)
        assert capture.loss == pytest.approx(loss, rel=LOSS_RTOL), mode
        assert set(capture.grads) == set(grads), mode
        got = torch.cat([capture.grads[n].flatten() for n in grads])
        want = torch.cat([g.flatten() for g in grads.values()])
        assert (got - want).norm() < GRAD_RTOL * want.norm(), mode


def test_per_sample_weighs_records_equally_inside_one_micro_batch(tiny_model_dir, data_dir, monkeypatch, tmp_path):
    data = write_json(data_dir / "train.json", [simple_record(0, "a.png", SHORT), simple_record(1, "b.png", LONG)])
    images = data_dir / "images"
    loss, grads = expected_gradients(tiny_model_dir, data, images, "per_sample")
    token_mean, _ = expected_gradients(tiny_model_dir, data, images, "global_tokens")
    assert abs(loss - token_mean) > 20 * LOSS_RTOL * abs(loss)  # what a token mean over the micro-batch would give
    capture = trained_gradients(
        monkeypatch, tiny_model_dir, data, images, tmp_path / "ps", "per_sample", batch=2, accumulation=1
    )
    assert capture.loss == pytest.approx(loss, rel=LOSS_RTOL)
    got = torch.cat([capture.grads[n].flatten() for n in grads])
    want = torch.cat([g.flatten() for g in grads.values()])
    assert (got - want).norm() < GRAD_RTOL * want.norm()


def test_unknown_normalisation_is_refused(tmp_path):
    with pytest.raises(ValueError, match="loss_normalization"):
        parse_args(["--data_path", "x.json", "--output_dir", str(tmp_path), "--loss_normalization", "per_batch"])
