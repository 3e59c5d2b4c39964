"""The offline tiny Qwen2-VL checkpoint behaves like a hub checkpoint."""

from __future__ import annotations

import json

import pytest
import torch
from PIL import Image


QWEN2VL_SPECIALS = [
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|vision_start|>",
    "<|image_pad|>",
    "<|video_pad|>",
]


@pytest.fixture(scope="module")
def loaded(tiny_model_dir):
    from transformers import AutoModelForImageTextToText, AutoProcessor

    processor = AutoProcessor.from_pretrained(tiny_model_dir)
    model = AutoModelForImageTextToText.from_pretrained(tiny_model_dir)
    return processor, model


def _batch(processor, size=(112, 112), text="{VQA} Is there a ship in the image? Answer yes or no."):
    messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": text}]}]
    prompt = processor.apply_chat_template(messages, add_generation_prompt=True)
    image = Image.new("RGB", size, (20, 90, 160))
    return prompt, processor(text=[prompt], images=[image], return_tensors="pt")


def test_loads_offline_as_qwen2vl(loaded, tiny_model_dir):
    processor, model = loaded
    assert type(model).__name__ == "Qwen2VLForConditionalGeneration"
    assert type(processor).__name__ == "Qwen2VLProcessor"
    for name in ["config.json", "generation_config.json", "tokenizer.json", "chat_template.jinja"]:
        assert (tiny_model_dir / name).is_file(), name


def test_special_tokens_in_real_order_and_config_ids_match(loaded):
    processor, model = loaded
    tok = processor.tokenizer
    ids = [tok.convert_tokens_to_ids(t) for t in QWEN2VL_SPECIALS]
    # Real Qwen2-VL: 151643, 151644, 151645, ..., 151652, 151655, 151656 (same offsets here).
    base = ids[0]
    assert [i - base for i in ids] == [0, 1, 2, 9, 12, 13]
    assert model.config.image_token_id == tok.convert_tokens_to_ids("<|image_pad|>")
    assert model.config.video_token_id == tok.convert_tokens_to_ids("<|video_pad|>")
    assert model.config.vision_start_token_id == tok.convert_tokens_to_ids("<|vision_start|>")
    eos = model.generation_config.eos_token_id
    assert eos == [tok.convert_tokens_to_ids("<|im_end|>"), tok.convert_tokens_to_ids("<|endoftext|>")]
    assert model.config.text_config.vocab_size >= len(tok)


def test_official_chat_template_layout(loaded):
    processor, _ = loaded
    prompt, _ = _batch(processor, text="{CLS} Classify the scene.")
    assert prompt == (
        "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n"
        "<|vision_start|><|image_pad|><|vision_end|>{CLS} Classify the scene.<|im_end|>\n<|im_start|>assistant\n"
    )


def test_tokenizer_round_trips_demo_text(loaded):
    processor, _ = loaded
    tok = processor.tokenizer
    text = "<reasoning> The background is blue. </reasoning><answer>[[120, 40, 560, 980]]</answer>"
    assert tok.decode(tok(text)["input_ids"]) == text


@pytest.mark.parametrize(("size", "expected_tokens"), [((56, 56), 4), ((112, 112), 16), ((224, 112), 32)])
def test_image_token_count_follows_image_size(loaded, size, expected_tokens):
    processor, model = loaded
    _, batch = _batch(processor, size=size)
    n_image_tokens = int((batch["input_ids"] == model.config.image_token_id).sum())
    assert n_image_tokens == expected_tokens
    t, h, w = batch["image_grid_thw"][0].tolist()
    assert t * h * w == expected_tokens * 4  # 2x2 patches merge into one token


def test_forward_backward_finite_with_vision_gradients(loaded):
    processor, model = loaded
    _, batch = _batch(processor)
    model.train()
    model.zero_grad()
    out = model(**batch, labels=batch["input_ids"])
    assert torch.isfinite(out.loss)
    out.loss.backward()
    vision_grads = [p.grad for n, p in model.named_parameters() if "visual" in n and p.grad is not None]
    assert vision_grads, "no gradient reached the vision tower"
    assert all(torch.isfinite(g).all() for g in vision_grads)
    assert sum(float(g.abs().sum()) for g in vision_grads) > 0
    model.eval()


def test_generate_stops_within_budget(loaded):
    processor, model = loaded
    _, batch = _batch(processor)
    with torch.no_grad():
        out = model.generate(**batch, max_new_tokens=6, do_sample=False)
    assert out.shape[0] == 1
    assert batch["input_ids"].shape[1] < out.shape[1] <= batch["input_ids"].shape[1] + 6


def test_deterministic_given_seed(tmp_path):
    from tinyrs_demo.tiny_model import build_tiny_model

    a = build_tiny_model(tmp_path / "a", preset="tiny", seed=3)
    b = build_tiny_model(tmp_path / "b", preset="tiny", seed=3)
    assert (a / "model.safetensors").read_bytes() == (b / "model.safetensors").read_bytes()
    assert json.loads((a / "tokenizer.json").read_text()) == json.loads((b / "tokenizer.json").read_text())


def test_small_preset_keeps_reasoning_tags_whole():
    from tinyrs_demo.tiny_model import PRESETS
    from tinyrs_demo.tokenizer import BASE_CORPUS, QWEN2VL_SPECIAL_TOKENS, train_tokenizer

    assert PRESETS["small"].whole_reasoning_tags and not PRESETS["tiny"].whole_reasoning_tags
    tok = train_tokenizer(BASE_CORPUS, 400, whole_reasoning_tags=True)
    text = "<reasoning>blue water</reasoning><answer>water</answer>"
    pieces = tok.convert_ids_to_tokens(tok(text)["input_ids"])
    assert {"<reasoning>", "</reasoning>", "<answer>", "</answer>"} <= set(pieces)
    assert tok.decode(tok(text)["input_ids"], skip_special_tokens=True) == text
    # The Qwen2-VL special tokens keep their relative ids; the tags come after them.
    ids = [tok.convert_tokens_to_ids(t) for t in QWEN2VL_SPECIAL_TOKENS]
    assert ids == list(range(ids[0], ids[0] + len(ids)))
    assert tok.convert_tokens_to_ids("<reasoning>") > ids[-1]


def _small_preset_inv_freq() -> list[float]:
    """The rotary frequencies the small preset's checkpoint config makes transformers compute (no weights needed)."""
    from transformers import Qwen2VLConfig
    from transformers.models.qwen2_vl.modeling_qwen2_vl import Qwen2VLRotaryEmbedding

    from tinyrs_demo.tiny_model import MAX_POSITIONS, PRESETS, _rope_parameters

    spec = PRESETS["small"]
    head_dim = spec.hidden_size // spec.num_attention_heads
    config = Qwen2VLConfig(
        text_config={
            "hidden_size": spec.hidden_size,
            "num_attention_heads": spec.num_attention_heads,
            "max_position_embeddings": MAX_POSITIONS,
            "rope_parameters": _rope_parameters(spec, head_dim),
        }
    ).text_config
    rotary = Qwen2VLRotaryEmbedding(config)
    assert rotary.attention_scaling == 1.0  # LongRoPE used only to place the frequencies: nothing else scales
    return rotary.inv_freq.tolist()


def test_small_preset_rotations_tell_image_rows_and_columns_apart():
    """The language model locates objects only through MRoPE: one image row or column must turn the keys visibly.

    With the real rope_theta (1e6) a 4x4-token image's columns differ by under 0.2 rad and grounding is not learnt at
    this size (measured: 9% vs 88% held-out box hits after 300 steps); the small preset must keep a usable rotation.
    """
    from tinyrs_demo.tiny_model import PRESETS

    freqs = _small_preset_inv_freq()
    t, h, _ = PRESETS["small"].mrope_section
    rows, cols = freqs[t : t + h], freqs[t + h :]
    assert max(rows) >= 0.5 and max(cols) >= 0.25, (rows, cols)


def test_small_preset_keeps_still_pairs_for_matching_by_content():
    """Every MRoPE section keeps pairs that barely turn, so a query can match an image token by what it shows,
    wherever it lies and however far the text is from the image (with theta 10 alone every pair turned at least
    0.12 rad per step; the still pairs took the demo's SFT grounding from 32% to 52% at seed 0)."""
    from tinyrs_demo.tiny_model import PRESETS

    freqs = _small_preset_inv_freq()
    t, h, w = PRESETS["small"].mrope_section
    sections = [freqs[:t], freqs[t : t + h], freqs[t + h : t + h + w]]
    for section in sections:
        still = [f for f in section if f * 200 < 0.5]  # under half a radian across a 200-token demo prompt
        assert len(still) >= 2, sections


def test_size_overrides_change_only_the_named_sizes(tmp_path):
    from transformers import AutoConfig

    from tinyrs_demo.tiny_model import build_tiny_model

    plain = AutoConfig.from_pretrained(build_tiny_model(tmp_path / "plain", preset="tiny"))
    deep = build_tiny_model(tmp_path / "deep", preset="tiny", sizes={"num_hidden_layers": 3})
    deeper = AutoConfig.from_pretrained(deep)
    assert (plain.text_config.num_hidden_layers, deeper.text_config.num_hidden_layers) == (2, 3)
    assert deeper.text_config.hidden_size == plain.text_config.hidden_size
    assert deeper.text_config.rope_parameters == plain.text_config.rope_parameters


@pytest.mark.parametrize(
    ("sizes", "message"),
    [
        ({"rope_theta": 10}, "cannot resize rope_theta"),
        ({"num_hidden_layers": 0}, "positive integers"),
        ({"num_attention_heads": 2}, "head width"),  # tiny: hidden 64 / 2 heads = 32, its rotary layout needs 16
        ({"num_key_value_heads": 3}, "not a multiple"),
    ],
)
def test_size_overrides_refuse_what_the_preset_cannot_take(tmp_path, sizes, message):
    from tinyrs_demo.tiny_model import build_tiny_model

    with pytest.raises(ValueError, match=message):
        build_tiny_model(tmp_path / "m", preset="tiny", sizes=sizes)
    assert not (tmp_path / "m").exists()


def test_attention_init_gain_scales_only_query_and_key():
    from dataclasses import replace

    from tinyrs_demo.tiny_model import PRESETS, build_model, preset_tokenizer

    assert PRESETS["small"].attention_init_gain == 3.0 and PRESETS["tiny"].attention_init_gain == 1.0
    tokenizer = preset_tokenizer(PRESETS["tiny"])
    plain = build_model(PRESETS["tiny"], tokenizer, seed=0)
    gained = build_model(replace(PRESETS["tiny"], attention_init_gain=3.0), tokenizer, seed=0)
    for a, b in zip(plain.model.language_model.layers, gained.model.language_model.layers):
        assert torch.equal(b.self_attn.q_proj.weight, 3.0 * a.self_attn.q_proj.weight)
        assert torch.equal(b.self_attn.k_proj.weight, 3.0 * a.self_attn.k_proj.weight)
        assert torch.equal(b.self_attn.v_proj.weight, a.self_attn.v_proj.weight)
        assert torch.equal(b.mlp.up_proj.weight, a.mlp.up_proj.weight)
    assert torch.equal(gained.model.visual.blocks[0].attn.qkv.weight, plain.model.visual.blocks[0].attn.qkv.weight)
