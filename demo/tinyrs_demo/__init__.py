"""TinyRS demo support: the synthetic remote-sensing data and the tiny Qwen2-VL checkpoint of the tests and the demo.

Modules, one concern each: vocabulary (words, prompts, templates, the benchmark table), scenes (sampling, rendering,
boxes), questions (the question builders and record counts), writers (the files, `build_demo_data`), corpus (the
tokenizer's training texts), tokenizer (tokenizer, chat template, processor), tiny_model (presets, `build_tiny_model`)
and cli (`tinyrs-demo-data`, `tinyrs-tiny-model`); fake_openai is the fake OpenAI-compatible judge server of the
tests and benchmarks/judge_throughput.py. Nothing here imports tinyrs_sft, tinyrs_grpo or tinyrs_eval.
"""
