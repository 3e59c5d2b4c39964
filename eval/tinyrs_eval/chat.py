"""``tinyrs-eval chat``: a local web page to chat with a checkpoint about one image (Gradio).

    tinyrs-eval chat --model_name_or_path demo_out/grpo --reasoning --examples demo_out/data/eval

Upload an image (or click an example), pick a task (adds {CLS} / {VQA} / {VG} as the benchmarks do) or free text,
ask; the answer streams in. Follow-up questions keep the image and the conversation. In reasoning mode the
reasoning and the answer are shown apart; for grounding the predicted boxes are drawn on the image (0-1000 grid to
pixels; a box past the image edge is drawn in orange on an enlarged canvas), with the raw output beside it.

Binds 127.0.0.1 unless told otherwise, never creates a share link unless --share, sends no analytics and loads no
web font: the page works without a network.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path
from typing import Any

from tinyrs_eval import __version__
from tinyrs_eval.cliargs import BOOL_FLAG, EXIT_FAILURE, EXIT_USAGE, StrictArgumentParser, setup_logging
from tinyrs_eval.errors import EvalError
from tinyrs_eval.images import load_image
from tinyrs_eval.interactive import TASK_LABELS, ChatModel, Turn, make_query, parse_output, split_output


logger = logging.getLogger(__name__)

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")


class ModelSlot:
    """The loaded model, or why none is loaded (shown in the page instead of a traceback)."""

    def __init__(self, model: Any = None, error: str | None = None, source: str = "", **load_kwargs: Any):
        self.model, self.error, self.source = model, error, source
        self.load_kwargs = load_kwargs  # ChatModel options used by load()

    def load(self, model_path: str) -> str:
        """Load ``model_path``; on failure the previous model (if any) stays in use and the error is shown."""
        model_path = (model_path or "").strip()
        if not model_path:
            self.error = "type a checkpoint folder or hub id in the Model box"
            return self.status()
        try:
            model = ChatModel(model_path, **self.load_kwargs)
        except EvalError as exc:
            self.error = f"the model failed to load: {exc}"
        except Exception as exc:  # any loader failure becomes one line in the page; the traceback goes to the log
            logger.exception("loading %s failed", model_path)
            self.error = f"the model failed to load: {model_path}: {type(exc).__name__}: {exc}"
        else:
            self.model, self.error, self.source = model, None, model_path
        return self.status()

    def status(self) -> str:
        if self.error:
            kept = f" Still using `{self.source}`." if self.model is not None else ""
            return f"**Error:** {self.error}.{kept}"
        if self.model is None:
            return "No model loaded."
        backend = getattr(self.model, "backend", None)
        where = f" on {backend.device} ({str(backend.dtype).replace('torch.', '')})" if backend is not None else ""
        return f"Model `{self.source}` ready{where}."


def example_rows(data_root: str | Path | None, limit: int = 8) -> list[list[str]]:
    """[image, task, question] rows from the demo benchmark files: the first record of each benchmark."""
    if not data_root:
        return []
    from tinyrs_eval.benchmarks import BENCHMARKS, load_benchmark
    from tinyrs_eval.errors import BenchmarkError

    task_of = {"cls": "cls", "vqa": "vqa", "bbox": "vg", "lhrsbench": "free"}
    rows = []
    for bench in BENCHMARKS.values():
        try:
            samples = load_benchmark(data_root, bench, limit=1)
        except BenchmarkError:
            continue
        if samples and samples[0].image_path.is_file():
            question = samples[0].question.replace("<image>", "").strip()
            rows.append([str(samples[0].image_path), task_of[bench.task_type], question])
    # one row of each task first (classification benchmarks come first in the registry and would fill the list)
    firsts = list({row[1]: row for row in reversed(rows)}.values())[::-1]
    firsts.sort(key=lambda row: list(task_of.values()).index(row[1]))
    return (firsts + [row for row in rows if row not in firsts])[:limit]


def _error(message: str) -> str:
    return f"**Error:** {message}"


def _image_error(path: str, error: str) -> str:
    """load_image's reason with the upload's temporary folder left out."""
    name = Path(path).name
    return f"cannot read the image {name}: {error.replace(str(path), name).split(': ', 1)[-1]}"


def _assistant_messages(raw: str, reasoning_mode: bool, task: str, final: bool) -> list[dict[str, Any]]:
    reasoning, answer = split_output(raw)
    shown = answer if answer else ("" if final else "…")
    if task == "vg" and answer:
        shown = f"`{answer}`"
    messages = []
    if reasoning_mode and reasoning:
        messages.append({"role": "assistant", "content": reasoning, "metadata": {"title": "Reasoning"}})
    messages.append({"role": "assistant", "content": shown or "(empty answer)"})
    return messages


def build_app(slot: ModelSlot, examples: list[list[str]] | None = None, reasoning: bool = False) -> Any:
    """The Gradio Blocks of the page. Event api names: ``load_image``, ``ask``, ``new_chat``, ``load_model``."""
    import gradio as gr

    from tinyrs_eval.boxes import draw_boxes

    def on_image(path: str | None):
        empty = ([], [], "", "", None, "")
        if not path:
            return None, "Upload an image to start.", *empty
        image, error = load_image(Path(path))
        if image is None:
            return None, _error(_image_error(path, error)), *empty
        return image, f"Image {Path(path).name}: {image.width}×{image.height} pixels. {slot.status()}", *empty

    def ask(path, task, reasoning_mode, question, history, chat):
        history, chat = list(history or []), list(chat or [])
        out = [chat, gr.skip(), gr.skip(), gr.skip(), gr.skip(), gr.skip(), history, gr.skip()]

        def _fail(message: str):
            out[5] = _error(message)
            return tuple(out)

        if slot.model is None:
            yield _fail(slot.error or "no model is loaded (Model box, Load model)")
            return
        if not path:
            yield _fail("upload an image first (or click an example)")
            return
        if not (question or "").strip():
            yield _fail("type a question")
            return
        image, error = load_image(Path(path))
        if image is None:
            yield _fail(_image_error(path, error))
            return
        model = slot.model
        query = make_query(task, question, model.prompt_style)
        prompt = model.prompt([Turn(**t) for t in history], query, bool(reasoning_mode))
        chat.append({"role": "user", "content": query})
        raw = ""
        try:
            for raw in model.stream(image, prompt):
                part_reasoning, part_answer = split_output(raw)
                shown = chat + _assistant_messages(raw, reasoning_mode, task, final=False)
                yield shown, part_reasoning, part_answer, gr.skip(), raw, "Generating…", history, ""
        except Exception as exc:  # one line in the page, the traceback in the terminal
            logger.exception("generation failed")
            yield _fail(f"generation failed: {type(exc).__name__}: {exc}")
            return
        result = parse_output(raw, (image.height, image.width), task)
        chat += _assistant_messages(raw, reasoning_mode, task, final=True)
        history.append({"query": query, "raw": raw})
        drawn = None
        note = f"Done: {len(raw)} characters."
        if result["boxes"]:
            drawn = draw_boxes(image, [b["pixels"] for b in result["boxes"]])
            grid = "; ".join(str([round(v) for v in b["grid"]]) for b in result["boxes"])
            outside = sum(b["outside"] for b in result["boxes"])
            note += f" Boxes (0-1000 grid): {grid}." + (f" {outside} past the image edge (orange)." if outside else "")
        elif task == "vg":
            note += " No box could be read from the answer."
        if result["malformed"]:
            note += " The output is malformed (no extractable answer)."
        yield chat, result["reasoning"], result["answer"], drawn, raw, note, history, ""

    def new_chat():
        return [], [], "", "", None, "", "New conversation (same image)."

    def load_model(path):
        return slot.load(path)

    with gr.Blocks(title="TinyRS chat") as demo:
        gr.Markdown("## TinyRS chat: ask a remote-sensing model about an image")
        status = gr.Markdown(slot.status(), elem_id="status")
        history = gr.State([])
        with gr.Row():
            with gr.Column(scale=1):
                upload = gr.File(label="Image (upload)", file_types=["image"], type="filepath", elem_id="upload")
                preview = gr.Image(label="Image", type="pil", interactive=False, elem_id="preview", height=260)
                task = gr.Radio([(v, k) for k, v in TASK_LABELS.items()], value="vqa", label="Task", elem_id="task")
                reasoning_box = gr.Checkbox(value=reasoning, label="Reasoning mode", elem_id="reasoning-mode")
                with gr.Accordion("Model", open=False):
                    model_box = gr.Textbox(value=slot.source, label="Checkpoint folder or hub id", elem_id="model")
                    load_btn = gr.Button("Load model", elem_id="load-model")
            with gr.Column(scale=2):
                chat = gr.Chatbot(label="Conversation", height=360, elem_id="chat")
                question = gr.Textbox(label="Question", placeholder="e.g. What is in this image?", elem_id="question")
                with gr.Row():
                    send = gr.Button("Ask", variant="primary", elem_id="ask")
                    clear = gr.Button("New chat", elem_id="new-chat")
                with gr.Row():
                    reasoning_out = gr.Textbox(label="Reasoning", lines=3, elem_id="reasoning-out")
                    answer_out = gr.Textbox(label="Answer", lines=3, elem_id="answer-out")
                boxes_img = gr.Image(
                    label="Predicted boxes", type="pil", format="png", interactive=False, elem_id="boxes"
                )
                with gr.Accordion("Raw output", open=False):
                    raw_out = gr.Textbox(label="Raw model output", lines=4, elem_id="raw")
        if examples:
            gr.Examples(examples=examples, inputs=[upload, task, question], label="Examples (demo data)")
        cleared = [history, chat, reasoning_out, answer_out, boxes_img, raw_out]
        upload.change(on_image, [upload], [preview, status, *cleared], api_name="load_image")
        ask_io = ([upload, task, reasoning_box, question, history, chat],
                  [chat, reasoning_out, answer_out, boxes_img, raw_out, status, history, question])  # fmt: skip
        send.click(ask, *ask_io, api_name="ask")
        question.submit(ask, *ask_io, api_name=False)
        clear.click(new_chat, None, [*cleared, status], api_name="new_chat")
        load_btn.click(load_model, [model_box], [status], api_name="load_model")
    return demo.queue(default_concurrency_limit=1)


def launch(app: Any, server_name: str = "127.0.0.1", server_port: int = 7860, **kwargs: Any) -> Any:
    """Serve the page: no server-side rendering (no node), no footer links, system fonts only (a web font would be
    fetched from the network); ``kwargs`` go to ``Blocks.launch`` (share, prevent_thread_lock, allowed_paths...)."""
    import gradio as gr

    theme = gr.themes.Default(
        font=["ui-sans-serif", "system-ui", "sans-serif"], font_mono=["ui-monospace", "monospace"]
    )
    kwargs.setdefault("share", False)
    return app.launch(
        server_name=server_name, server_port=server_port, ssr_mode=False, footer_links=[], theme=theme, **kwargs
    )


# make chat: the newest stage the demo has trained, and whether that stage answers in reasoning mode
DEMO_STAGES = (("grpo", True), ("cot_sft", True), ("sft", False), ("pretrain", False), ("base", False))


def demo_checkpoint(demo_dir: str | Path) -> tuple[Path, bool]:
    """The latest stage checkpoint of a ``make demo`` output folder and whether to start in reasoning mode."""
    for stage, reasoning in DEMO_STAGES:
        folder = Path(demo_dir) / stage
        if (folder / "config.json").is_file():
            return folder, reasoning
    raise EvalError(f"no stage checkpoint (grpo, cot_sft, sft, pretrain, base) in {demo_dir}: run `make demo` first")


def build_parser() -> argparse.ArgumentParser:
    p = StrictArgumentParser(prog="tinyrs-eval chat", description=__doc__.splitlines()[0])
    p.add_argument("--version", action="version", version=f"tinyrs-eval {__version__}")
    p.add_argument("--model_name_or_path", "--model_path", default=None, help="checkpoint folder or hub id")
    p.add_argument(
        "--demo_dir",
        default=None,
        help="a `make demo` output folder: its latest stage checkpoint (grpo > cot_sft > sft > pretrain > base, "
        "reasoning mode on for cot_sft/grpo) and example images from <demo_dir>/data/eval",
    )
    p.add_argument(
        "--reasoning", default=False, **BOOL_FLAG, help="start with reasoning mode on (a toggle in the page)"
    )
    p.add_argument("--reasoning_config", default=None, help="chat template JSON for reasoning mode (default built in)")
    p.add_argument("--prompt_style", default="tinyrs", choices=("tinyrs", "qwen2vl"))
    p.add_argument("--examples", default=None, help="a benchmark data_root (e.g. demo_out/data/eval) for examples")
    p.add_argument("--max_new_tokens", type=int, default=512)
    p.add_argument("--device", default="auto", help="auto (cuda if present), cpu, cuda, cuda:1 ...")
    p.add_argument("--dtype", default="auto", choices=("auto", "float32", "bfloat16", "float16"))
    p.add_argument("--server_name", default="127.0.0.1", help="address to bind (0.0.0.0 exposes it to the LAN)")
    p.add_argument("--server_port", type=int, default=7860)
    p.add_argument(
        "--share", default=False, **BOOL_FLAG, help="also create a public gradio.live link (needs a network)"
    )
    p.add_argument("--log_level", default="INFO", choices=("DEBUG", "INFO", "WARNING", "ERROR"))
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    setup_logging(args.log_level)
    if args.demo_dir:
        try:
            model, reasoning = demo_checkpoint(args.demo_dir)
        except EvalError as exc:
            sys.stderr.write(f"error: {exc}\n")
            return EXIT_USAGE
        args.model_name_or_path = args.model_name_or_path or str(model)
        args.reasoning = args.reasoning or reasoning
        examples = Path(args.demo_dir) / "data" / "eval"
        args.examples = args.examples or (str(examples) if examples.is_dir() else None)
        logger.info("demo: %s, reasoning mode %s", args.model_name_or_path, "on" if args.reasoning else "off")
    if not args.model_name_or_path:
        parser.error("give --model_name_or_path or --demo_dir")
    if args.examples and not Path(args.examples).is_dir():
        sys.stderr.write(f"error: --examples is not a folder: {args.examples}\n")
        return EXIT_USAGE
    slot = ModelSlot(
        max_new_tokens=args.max_new_tokens,
        device=args.device,
        dtype=args.dtype,
        prompt_style=args.prompt_style,
        reasoning_config=args.reasoning_config,
    )
    logger.info("loading %s", args.model_name_or_path)
    slot.load(args.model_name_or_path)
    if slot.error:
        logger.error("%s (the page shows it; load another model there)", slot.error)
    rows = example_rows(args.examples)
    app = build_app(slot, rows, reasoning=args.reasoning)
    logger.info("serving on http://%s:%d (Ctrl+C stops)", args.server_name, args.server_port)
    try:
        launch(
            app,
            args.server_name,
            args.server_port,
            share=args.share,
            allowed_paths=[str(Path(args.examples).resolve())] if args.examples else None,
        )
    except OSError as exc:
        sys.stderr.write(f"error: cannot serve on {args.server_name}:{args.server_port}: {exc}\n")
        return EXIT_FAILURE
    return 0


if __name__ == "__main__":
    sys.exit(main())
