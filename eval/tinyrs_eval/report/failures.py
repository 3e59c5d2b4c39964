"""The failure browser: per run and benchmark, a sample of the wrong answers, for every task type.

Each card: a thumbnail (grounding: ground truth green, prediction red, orange when the box reaches past the image,
which is then drawn on an enlarged canvas instead of being clipped), the question, the expected answer, the raw
prediction and the extracted answer, and flags (malformed, unreadable image, undecodable bytes). A small inline
script filters the cards (run, benchmark, task type, flags, text); without scripts every card shows.
"""

from __future__ import annotations

import html
import logging
from typing import Any

from tinyrs_eval import boxes, metrics
from tinyrs_eval.report.figures import png_of_image
from tinyrs_eval.report.runs import benchmark_keys, predictions_path, read_records
from tinyrs_eval.report.text import clean_question, has_undecodable, show


logger = logging.getLogger(__name__)
THUMB = 200


def is_wrong(rec: dict[str, Any], task_type: str) -> bool:
    """Wrong in strict mode: score below 1 (grounding: not every box hit), no score, or an unreadable image."""
    if rec.get("error"):
        return True
    value = (rec.get("score") or {}).get("strict")
    if value is None:
        try:
            value = metrics.sample_score(task_type, rec, "strict")
        except (KeyError, ValueError, TypeError):
            return True
    return value is None or value < 1


def spread(items: list[Any], n: int) -> list[Any]:
    """``n`` items spread evenly over the list (all of them when there are fewer)."""
    if len(items) <= n:
        return list(items)
    return [items[round(i * (len(items) - 1) / (n - 1))] for i in range(n)] if n > 1 else items[:1]


def _pred_boxes(rec: dict[str, Any]) -> list[list[float]]:
    size = rec.get("size")
    if not size or rec.get("error") or metrics.is_malformed(rec.get("pred", "")):
        return []
    return [b["pixels"] for b in boxes.answer_boxes(metrics.extract_answer(rec["pred"]), size)]


class Thumbnails:
    """Base64 thumbnails; plain images are cached by path (every run shows the same benchmark images)."""

    def __init__(self) -> None:
        self._plain: dict[str, str] = {}

    def get(self, rec: dict[str, Any], task_type: str) -> tuple[str | None, bool]:
        """(base64 JPEG or None when the image cannot be read, whether a predicted box is past the edge)."""
        from PIL import Image

        path = str(rec.get("image", ""))
        pred = _pred_boxes(rec) if task_type == "bbox" else []
        if not pred and task_type != "bbox" and path in self._plain:
            return self._plain[path], False
        try:
            with Image.open(path) as im:
                im = im.convert("RGB")
        except (OSError, ValueError):
            return None, False
        gt = metrics.parse_boxes(rec.get("answer", "")) if task_type == "bbox" else []
        size = (im.height, im.width)
        outside = any(boxes.is_outside(b, size) for b in pred)
        data = png_of_image(boxes.draw_boxes(im, pred, gt, max_side=THUMB), "JPEG")
        if task_type != "bbox":
            self._plain[path] = data
        return data, outside


def _card(rec: dict[str, Any], task_type: str, thumbs: Thumbnails) -> str:
    data, outside = thumbs.get(rec, task_type)
    img = (f"<img alt='sample {rec.get('index')}' src='data:image/jpeg;base64,{data}'>" if data
           else "<div class=noimg>image not available</div>")  # fmt: skip
    pred = rec.get("pred", "")
    flags = []
    if rec.get("error"):
        flags.append(f"<span class='flag err'>error: {show(rec['error'], 160)}</span>")
    malformed = bool(rec.get("malformed")) if "malformed" in rec else metrics.is_malformed(pred)
    if malformed and not rec.get("error"):
        flags.append("<span class='flag mal'>malformed</span>")
    if outside:
        flags.append("<span class='flag out'>box past image edge</span>")
    if has_undecodable(pred):
        flags.append("<span class='flag bytes'>undecodable bytes</span>")
    score = (rec.get("score") or {}).get("strict")
    score_txt = "" if score is None or task_type != "bbox" else f" · boxes hit {score:.2f}"
    extracted = rec.get("extracted_answer", metrics.extract_answer(pred))
    search = f"{clean_question(rec.get('question'))} {rec.get('answer', '')} {pred}".lower().replace("\ufffd", "?")
    search = html.escape(search, quote=True)
    return (
        f'<div class=card data-malformed={int(malformed)} data-outside={int(outside)} data-text="{search}">{img}'
        f"<div class=meta>#{rec.get('index')}{score_txt} {''.join(flags)}</div>"
        f"<div><b>Q</b> {show(clean_question(rec.get('question')), 300)}</div>"
        f"<div><b>expected</b> <code>{show(rec.get('answer'), 200)}</code></div>"
        f"<div><b>extracted</b> <code>{show(extracted, 200)}</code></div>"
        f"<details><summary>raw prediction ({len(str(pred))} chars)</summary><pre>{show(pred, 2000)}</pre></details>"
        "</div>"
    )


def failure_browser(runs: list[dict[str, Any]], per_group: int = 6) -> str:
    """The failures section: filter bar and one group of cards per (run, benchmark)."""
    thumbs = Thumbnails()
    groups = []
    for run in runs:
        for key in benchmark_keys([run]):
            bench = run["benchmarks"][key]
            task_type = bench["task_type"]
            attrs = (f"data-run=\"{html.escape(run['_label'], quote=True)}\" data-bench=\"{html.escape(key)}\" "
                     f"data-task={task_type}")  # fmt: skip
            title = f"{html.escape(run['_label'])} · {html.escape(key)} ({task_type})"
            path = predictions_path(run, key)
            if path is None:
                groups.append(f"<div class=group {attrs}><h3>{title}</h3><p>predictions file not found</p></div>")
                continue
            records = read_records(path)
            wrong = [r for r in records if is_wrong(r, task_type)]
            n_mal = sum(bool(r.get("malformed")) for r in wrong)
            n_err = sum(bool(r.get("error")) for r in wrong)
            shown = spread(wrong, per_group)
            summary = (f"{len(wrong)} wrong of {len(records)} (malformed {n_mal}, unreadable images {n_err}); "
                       f"showing {len(shown)}")  # fmt: skip
            cards = "".join(_card(r, task_type, thumbs) for r in shown) or "<p>No wrong answer.</p>"
            groups.append(f"<div class=group {attrs}><h3>{title}</h3><p class=note>{summary}</p>"
                          f"<div class=grid>{cards}</div></div>")  # fmt: skip
    if not groups:
        return "<p>No benchmark in these runs.</p>"
    return _filter_bar(runs) + "<div id=failures>" + "".join(groups) + "</div>" + _SCRIPT


def _options(values: list[str]) -> str:
    return "<option value=''>all</option>" + "".join(
        f'<option value="{html.escape(v, quote=True)}">{html.escape(v)}</option>' for v in values
    )


def _filter_bar(runs: list[dict[str, Any]]) -> str:
    tasks = list(dict.fromkeys(b["task_type"] for r in runs for b in r["benchmarks"].values()))
    return (
        "<form id=filters class=filters onsubmit='return false'>"
        f"<label>run <select name=run>{_options([r['_label'] for r in runs])}</select></label>"
        f"<label>benchmark <select name=bench>{_options(benchmark_keys(runs))}</select></label>"
        f"<label>task <select name=task>{_options(tasks)}</select></label>"
        "<label><input type=checkbox name=malformed> malformed only</label>"
        "<label><input type=checkbox name=outside> boxes past the edge only</label>"
        "<label>text <input type=search name=text placeholder='question, answer, prediction'></label>"
        "<span id=shown class=note></span></form>"
        "<p class=note>Green: ground-truth box; red: predicted box; orange: predicted box past the image edge "
        "(the canvas is enlarged to show it, the image keeps a grey frame). [?×n]: n undecodable byte sequences.</p>"
    )


_SCRIPT = """<script>
(function () {
  var form = document.getElementById('filters');
  function apply() {
    var f = form.elements, text = f.text.value.toLowerCase(), total = 0;
    document.querySelectorAll('#failures .group').forEach(function (g) {
      var ok = (!f.run.value || g.dataset.run === f.run.value) && (!f.bench.value || g.dataset.bench === f.bench.value)
        && (!f.task.value || g.dataset.task === f.task.value), n = 0;
      g.querySelectorAll('.card').forEach(function (c) {
        var show = ok && (!f.malformed.checked || c.dataset.malformed === '1')
          && (!f.outside.checked || c.dataset.outside === '1') && (!text || c.dataset.text.indexOf(text) >= 0);
        c.hidden = !show; n += show ? 1 : 0;
      });
      g.hidden = !ok || (n === 0 && (f.malformed.checked || f.outside.checked || text));
      total += n;
    });
    document.getElementById('shown').textContent = total + ' cards shown';
  }
  form.addEventListener('input', apply); form.addEventListener('change', apply); apply();
})();
</script>"""
