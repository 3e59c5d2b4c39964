"""Headless Chromium, as a person would use the pages (``make test-browser``; marker ``browser``).

The chat page: upload an image, ask, the streamed answer appears; grounding draws the box. The report: nothing
overflows the page width, and the failure filter works. Screenshots are saved under the test's tmp folder and copied
to $TINYRS_SCREENSHOTS (default /work/screenshots when that folder can be made) for a person to look at.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import pytest
from PIL import Image

from helpers import free_port, single_torch_thread


pytestmark = pytest.mark.browser

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")


def _save(driver, tmp_path: Path, name: str) -> Path:
    path = tmp_path / name
    driver.save_screenshot(str(path))
    target = Path(os.environ.get("TINYRS_SCREENSHOTS", "/work/screenshots"))
    try:
        target.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, target / name)
    except OSError:
        pass
    return path


@pytest.fixture(scope="module")
def driver():
    if not (CHROMIUM and DRIVER):
        pytest.skip("needs Debian's chromium and chromium-driver (make test-browser installs them)")
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--window-size=1280,1400",
    ):
        options.add_argument(arg)
    drv = webdriver.Chrome(options=options, service=Service(executable_path=DRIVER))
    drv.set_page_load_timeout(60)
    yield drv
    drv.quit()


def _wait(predicate, timeout: float = 60.0, what: str = "condition"):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            value = predicate()
        except Exception:  # element not there yet
            value = None
        if value:
            return value
        time.sleep(0.25)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture(scope="module")
def chat_url(tiny_model_dir, tmp_path_factory):
    from tinyrs_eval import chat

    with single_torch_thread():
        slot = chat.ModelSlot(max_new_tokens=16, device="cpu")
        slot.load(str(tiny_model_dir))
        data = tmp_path_factory.mktemp("examples")  # a one-benchmark data_root for the example row
        (data / "VG_DOIR_RSVG_test").mkdir()
        Image.new("RGB", (90, 70), (90, 90, 90)).save(data / "VG_DOIR_RSVG_test" / "ex.png")
        record = {"image": "ex.png", "conversations": [{"value": "<image>\nthe tank"}, {"value": "[1, 1, 9, 9]"}]}
        (data / "VG_DOIR_RSVG_test.json").write_text(json.dumps([record]))
        port = free_port()
        demo = chat.build_app(slot, chat.example_rows(data))
        chat.launch(demo, "127.0.0.1", port, prevent_thread_lock=True, quiet=True)
        yield f"http://127.0.0.1:{port}/", slot
        demo.close()


def _text(driver, css: str) -> str:
    from selenium.webdriver.common.by import By

    return driver.find_element(By.CSS_SELECTOR, css).get_attribute("value") or ""


def _status(driver) -> str:
    from selenium.webdriver.common.by import By

    return driver.find_element(By.CSS_SELECTOR, "#status").text


def test_chat_page_upload_ask_answer(driver, chat_url, tmp_path):
    from selenium.webdriver.common.by import By

    url, slot = chat_url
    image = tmp_path / "field.png"
    Image.new("RGB", (160, 120), (40, 120, 40)).save(image)
    driver.get(url)
    upload = _wait(lambda: driver.find_element(By.CSS_SELECTOR, "#upload input[type=file]"), what="upload input")
    upload.send_keys(str(image))
    _wait(lambda: "160×120 pixels" in _status(driver), what="the image to load")
    driver.find_element(By.CSS_SELECTOR, "#question textarea").send_keys("Is there a road?")
    driver.find_element(By.CSS_SELECTOR, "#ask").click()
    _wait(lambda: _status(driver).startswith("Done"), 120, "the answer")
    answer = _text(driver, "#answer-out textarea")
    assert answer.strip()
    assert "{VQA} Is there a road?" in driver.find_element(By.CSS_SELECTOR, "#chat").text
    # nothing was fetched from anywhere but this server (no web fonts, no CDN, no analytics)
    urls = driver.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")
    assert urls and all(u.startswith(url.rstrip("/")) or u.startswith(("data:", "blob:")) for u in urls), urls
    _save(driver, tmp_path, "chat_answer.png")

    # grounding with a model scripted to answer a known box: the box is drawn on the image in the page
    real = slot.model

    class Scripted:
        prompt_style, backend = real.prompt_style, real.backend
        prompt = staticmethod(real.prompt)

        @staticmethod
        def stream(image, prompt):
            yield "[[250, 250"
            yield "[[250, 250, 750, 750]]"

    slot.model = Scripted()
    try:
        driver.find_element(By.XPATH, "//label[contains(., 'Grounding')]").click()
        driver.find_element(By.CSS_SELECTOR, "#question textarea").send_keys("the field")
        driver.find_element(By.CSS_SELECTOR, "#ask").click()
        _wait(lambda: "Boxes (0-1000 grid): [250, 250, 750, 750]" in _status(driver), 60, "the box")
        img = _wait(lambda: driver.find_element(By.CSS_SELECTOR, "#boxes img"), what="the drawn image")
        assert img.size["width"] > 0
        _save(driver, tmp_path, "chat_grounding.png")
    finally:
        slot.model = real


def _report(tmp_path: Path) -> Path:
    from tinyrs_eval import metrics, report

    Image.new("RGB", (120, 90), (120, 110, 60)).save(tmp_path / "scene.png")
    long_pred = "x" * 600 + "\ufffd" * 3 + " [[900, 900, 1500, 1400]]"
    run_dirs = []
    for name, preds in (("sft", [long_pred, "yes"]), ("grpo", ["no", "<reasoning>cut"])):
        run_dir = tmp_path / name
        run_dir.mkdir()
        benchmarks = {}
        for key, task, answer in (("vqa_LR-pre", "vqa", "yes"), ("rs_vg", "bbox", "[10, 10, 60, 50]")):
            lines = []
            for i, pred in enumerate(preds):
                rec = {"index": i, "image": str(tmp_path / "scene.png"), "size": [90, 120],
                       "question": "<image>\n" + "a very long question " * 30, "answer": answer, "pred": pred,
                       "error": None, "malformed": metrics.is_malformed(pred)}  # fmt: skip
                rec["score"] = {m: metrics.sample_score(task, rec, m) for m in metrics.MODES}
                lines.append(json.dumps(rec))
            (run_dir / f"{key}.jsonl").write_text("\n".join(lines) + "\n")
            metric = "precision@0.5" if task == "bbox" else "accuracy"
            benchmarks[key] = {"task_type": task, "n_samples": 2, "strict": {metric: 0.0}, "legacy": {metric: 0.0},
                               "malformed": 1, "errors": 0, "predictions": f"{name}/{key}.jsonl"}  # fmt: skip
        (run_dir / "results.json").write_text(json.dumps({"run_name": name, "config": {}, "benchmarks": benchmarks}))
        run_dirs.append(str(run_dir))
    out = tmp_path / "report.html"
    assert report.main([*run_dirs, "--output", str(out)]) == 0
    return out


def test_report_fits_the_page_and_filters(driver, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    page = _report(tmp_path)
    driver.set_window_size(1024, 1400)
    driver.get(page.as_uri())
    overflow = driver.execute_script(
        """const w = document.documentElement.clientWidth, bad = [];
        for (const el of document.body.querySelectorAll('*')) {
          if (el.closest('.scroll') && !el.classList.contains('scroll')) continue;  // scrolls inside its box
          const r = el.getBoundingClientRect();
          if (r.width && r.right > w + 1) bad.push(el.tagName + '.' + el.className + ' ' + Math.round(r.right));
        }
        return {w: w, scroll: document.documentElement.scrollWidth, bad: bad.slice(0, 10)};"""
    )
    assert overflow["scroll"] <= overflow["w"] and overflow["bad"] == [], overflow
    _save(driver, tmp_path, "report_top.png")
    cards = lambda: len([c for c in driver.find_elements(By.CSS_SELECTOR, ".card") if c.is_displayed()])  # noqa: E731
    assert cards() == 7  # wrong answers: sft vqa 1 + grounding 2, grpo vqa 2 + grounding 2
    Select(driver.find_element(By.NAME, "task")).select_by_value("bbox")
    assert cards() == 4
    driver.find_element(By.NAME, "malformed").click()
    assert cards() == 1  # grpo's "<reasoning>cut"
    driver.find_element(By.NAME, "malformed").click()
    driver.find_element(By.NAME, "outside").click()
    assert cards() == 1  # sft's [[900, 900, 1500, 1400]]
    driver.find_element(By.NAME, "outside").click()
    Select(driver.find_element(By.NAME, "task")).select_by_value("")
    driver.execute_script("document.getElementById('failures').scrollIntoView()")
    _save(driver, tmp_path, "report_failures.png")


def test_chat_example_is_one_click_away(driver, chat_url, tmp_path):
    from selenium.webdriver.common.by import By

    url, _ = chat_url
    driver.get(url)
    cell = _wait(lambda: driver.find_element(By.XPATH, "//td[contains(., 'ex.png')]"), what="the example row")
    cell.click()
    _wait(lambda: "90×70 pixels" in _status(driver), what="the example image to load")
    assert driver.find_element(By.XPATH, "//label[contains(., 'Grounding')]//input").is_selected()
    assert _text(driver, "#question textarea") == "the tank"
    _save(driver, tmp_path, "chat_example.png")
