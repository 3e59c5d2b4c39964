"""GRPO row checks and normalisation (docs/data-format.md, "GRPO dataset"): prompt, problem and solution.

``normalize_row`` turns one dataset row into the columns GRPOTrainer and the rewards read: ``problem`` (str),
``prompt`` (conversational, one image placeholder, the reasoning system prompt when the source had no prompt) and
``solution`` = [answer_type, answer, question, image_base64] as strings, or raises ``BadRowError`` naming the problem.
"""

from __future__ import annotations

from typing import Any

from tinyrs_grpo.text import BOX, EXACT, REASONING_SYSTEM_PROMPT, answer_type_code, normalize_answer, parse_box


SOLUTION_KEYS = ("answer_type", "answer", "question", "image_base64")


# JSON/JSONL records whose image path is refused by the path policy carry the reason here until the row check
# reports them as bad rows (counted, skippable); the column never reaches the trainer.
REFUSAL_COLUMN = "_tinyrs_image_refused"


class BadRowError(ValueError):
    """A dataset row that cannot be trained on."""


class DatasetError(ValueError):
    """A dataset that cannot be trained on (bad rows listed in the message)."""


def normalize_prompt(prompt: Any) -> list[dict]:
    """Conversational prompt with list-of-parts contents ({"type", "text"}), as arrow stores it."""
    if not isinstance(prompt, list) or not prompt:
        raise BadRowError("'prompt' must be a non-empty list of {role, content} messages")
    messages = []
    for message in prompt:
        if not isinstance(message, dict) or "role" not in message:
            raise BadRowError("'prompt' messages must be objects with 'role' and 'content'")
        content = message.get("content")
        if isinstance(content, str):
            parts = [{"type": "text", "text": content}]
        elif isinstance(content, list):
            parts = []
            for part in content:
                if not isinstance(part, dict) or part.get("type") not in ("text", "image"):
                    raise BadRowError(f"'prompt' content parts must be text or image parts, got {part!r:.80}")
                parts.append({"type": part["type"], "text": part.get("text") if part["type"] == "text" else None})
        else:
            raise BadRowError(f"'prompt' message content must be a string or a list of parts, got {content!r:.80}")
        messages.append({"role": str(message["role"]), "content": parts})
    return messages


def build_prompt(problem: str, system_prompt: str = REASONING_SYSTEM_PROMPT) -> list[dict]:
    """The conversational prompt of a row: reasoning system prompt, then the image, then the problem text."""
    return [
        {"role": "system", "content": [{"type": "text", "text": system_prompt}]},
        {"role": "user", "content": [{"type": "image", "text": None}, {"type": "text", "text": problem}]},
    ]


def _prompt_problem(prompt: list[dict]) -> str:
    texts = [p["text"] or "" for m in prompt if m["role"] == "user" for p in m["content"] if p["type"] == "text"]
    return "\n".join(t for t in texts if t).strip()


def normalize_row(row: dict, has_prompt: bool) -> dict:
    """Check one row and return its normalised ``problem``, ``prompt`` and ``solution``.

    Raises:
        BadRowError: naming the problem.
    """
    prompt = normalize_prompt(row["prompt"]) if has_prompt and row.get("prompt") is not None else None
    problem = row.get("problem")
    if problem is None and prompt is not None:
        problem = _prompt_problem(prompt)
    if problem is not None and not isinstance(problem, str):
        raise BadRowError(f"'problem' must be a string, got {type(problem).__name__}")
    if not isinstance(problem, str) or not problem.strip():
        raise BadRowError("empty problem")
    if prompt is None:
        prompt = build_prompt(problem)
    n_images = sum(p["type"] == "image" for m in prompt for p in m["content"])
    if n_images == 0:
        for message in prompt:
            if message["role"] == "user":
                message["content"].insert(0, {"type": "image", "text": None})
                break
        else:
            raise BadRowError("'prompt' has no user message")
    elif n_images > 1:
        raise BadRowError(f"'prompt' has {n_images} image placeholders for one image")

    solution = row.get("solution")
    if isinstance(solution, dict):
        solution = [solution.get(k) for k in SOLUTION_KEYS]
    if not isinstance(solution, (list, tuple)) or not 2 <= len(solution) <= 4:
        raise BadRowError(f"malformed solution {solution!r:.80}: expected [{', '.join(SOLUTION_KEYS)}]")
    fields = list(solution) + [None] * (4 - len(solution))
    try:
        code = answer_type_code(fields[0])
    except ValueError as exc:
        raise BadRowError(str(exc)) from exc
    answer = "" if fields[1] is None else str(fields[1])
    question = str(fields[2]) if fields[2] else problem
    image_b64 = "" if fields[3] is None else str(fields[3])
    if code == EXACT and not normalize_answer(answer):
        raise BadRowError("answer_type 1 with an empty answer")
    if code == BOX:
        box = parse_box(answer)
        if box is None or box[2] <= box[0] or box[3] <= box[1]:
            raise BadRowError(f"answer_type 2 without a valid [x1, y1, x2, y2] box: {answer!r:.80}")
    return {"problem": problem, "prompt": prompt, "solution": [code, answer, question, image_b64]}
