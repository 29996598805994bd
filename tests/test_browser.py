"""End to end in a real browser: `streamlit run`, headless Chromium through Playwright, a distillation.

Skips with a reason where Debian's Chromium (/usr/bin/chromium) or Playwright is not installed;
`.ci/run` installs both, so in CI it always runs. Never `playwright install` (it downloads a browser).
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = os.environ.get("KDLAB_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(os.environ.get("KDLAB_ARTIFACTS", ROOT / "artifacts"))

pytestmark = pytest.mark.browser


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(private_dirs):
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium; .ci/run does)")
    pytest.importorskip("playwright.sync_api", reason="playwright is not installed (requirements-test.txt)")
    port = free_port()
    env = {**os.environ, "KDLAB_CACHE": str(private_dirs["cache"]), "KDLAB_DATA": str(private_dirs["data"])}
    env.pop("KDLAB_EXECUTOR", None)   # the served app's own job runner: worker processes
    env.pop("KDLAB_SUBMIT_WAIT", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", str(ROOT / "app.py"), "--server.headless", "true",
         "--server.port", str(port), "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 90
    while time.time() < deadline:
        try:
            if urllib.request.urlopen(f"{url}/_stcore/health", timeout=2).status == 200:
                break
        except OSError:
            time.sleep(0.5)
    else:
        proc.kill()
        pytest.fail("streamlit did not start: " + proc.stdout.read().decode(errors="replace")[-2000:])
    yield url
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()


@pytest.fixture
def page(server):
    """A fresh page of headless Debian Chromium (a new Streamlit session), 1400 × 1000."""
    from playwright.sync_api import sync_playwright
    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=CHROMIUM, headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync"])
        try:
            yield browser.new_page(viewport={"width": 1400, "height": 1000})
        finally:
            browser.close()


def test_distill_in_a_real_browser(server, page):
    from playwright.sync_api import expect
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.goto(server, timeout=120_000)
    expect(page.get_by_text("Distillation Lab").first).to_be_visible(timeout=120_000)
    page.screenshot(path=str(ARTIFACTS / "home.png"), full_page=True)
    page.get_by_role("link", name="Distill").first.click()
    expect(page.get_by_role("button", name="Distill")).to_be_visible(timeout=120_000)
    # a short distillation: 5 student epochs
    epochs = page.get_by_label("Epochs").nth(1)
    epochs.fill("5")   # no Enter: in a form, Enter submits it (the Distill click below does)
    page.get_by_role("button", name="Distill").click()
    expect(page.get_by_text("Distilled student").first).to_be_visible(timeout=180_000)
    verdict = re.compile("points better|points worse|made no difference")
    expect(page.get_by_text(verdict).first).to_be_visible(timeout=30_000)
    page.wait_for_timeout(1500)  # let the charts draw before the picture
    page.screenshot(path=str(ARTIFACTS / "distill.png"), full_page=True)
    expect(page.get_by_text("Scratch student").first).to_be_visible()
    expect(page.get_by_text("Confusion matrix: distilled (test set)").first).to_be_attached()


# the animations of a page waiting for a run, sampled every 50 ms for `ms` ms, as "kind name @ data-testid":
# keyframe animations (a spinner, the "Running" icon: frames for as long as the run lasts) and the fades
# of stale elements and slides of progress bars (on every rerun); not the short one-off transitions of
# a control under the mouse or the status widget appearing
MOVING = """async (ms) => { const moving = new Set(); for (let t = 0; t < ms; t += 50) {
  for (const a of document.getAnimations()) {
    const timing = a.effect ? a.effect.getComputedTiming() : {};
    let e = a.effect && a.effect.target; while (e && !(e.getAttribute && e.getAttribute("data-testid"))) e = e.parentElement;
    const where = e ? e.getAttribute("data-testid") : "?";
    if (a instanceof CSSTransition && (!(timing.duration > 0) ||   // a step after a delay: no frames
        !(where === "stElementContainer" || (e && e.closest("[data-testid=stProgress]"))))) continue;
    moving.add(`${a.constructor.name} ${a.animationName || a.transitionProperty} @ ${where}`);
  }
  await new Promise(r => setTimeout(r, 50)); } return [...moving]; }"""


def test_stop_keeps_the_partial_students(server, page):
    # Stop ends the script run mid-training; the next run must find the work in progress and show it
    from playwright.sync_api import expect
    page.goto(f"{server}/distill", timeout=120_000)
    expect(page.get_by_role("button", name="Distill")).to_be_visible(timeout=120_000)
    page.get_by_label("Epochs").nth(1).fill("300")
    # the widest and deepest student (800 units, the most layers): 300 epochs take long enough to be
    # stopped half-way (the default student's 300 epochs end within the few seconds a page waits for a
    # short run; a one-layer 800-unit student's, with its three students on two workers, soon after)
    page.get_by_role("slider", name="Hidden width").nth(1).focus()
    page.keyboard.press("End")
    page.get_by_role("slider", name="Hidden layers").nth(1).focus()
    page.keyboard.press("End")
    page.get_by_role("button", name="Distill").click()
    # while the page waits for the run (a spinner) and then watches it live, nothing is animated frame
    # by frame (ui.present.LOW_MOTION_CSS): in software rendering each frame costs the machine CPU
    assert page.evaluate(MOVING, 2500) == []
    # the three students train side by side (parts of the run): "distilled: epoch 12/300, ..."
    expect(page.get_by_text(re.compile(r"distilled: epoch \d+/300")).first).to_be_visible(timeout=120_000)
    assert page.evaluate(MOVING, 2500) == []
    # the students' Stop (key "distill_stop"); a rerun can leave a hidden stale copy in the page
    page.locator(".st-key-distill_stop button").filter(visible=True).first.click()
    expect(page.get_by_text(re.compile(r"Distillation stopped (after epoch \d+|before its last epoch: the "
                                       r"distilled student after epoch \d+, .*) of 300")).first) \
        .to_be_visible(timeout=60_000)
    expect(page.get_by_text("Distilled student").first).to_be_visible()


def test_reload_keeps_the_run_and_the_runs_page_compares_two(server, page):
    from playwright.sync_api import expect
    page.goto(f"{server}/distill", timeout=120_000)
    expect(page.get_by_role("button", name="Distill")).to_be_visible(timeout=120_000)
    epochs = page.get_by_label("Epochs").nth(1)
    for n in ("3", "4"):
        epochs.fill(n)
        page.get_by_role("button", name="Distill").click()
        expect(page.get_by_text(re.compile(rf"· {n} epochs · seed 0")).first).to_be_visible(timeout=180_000)
    assert "ws=" in page.url                   # the workspace is in the address: a reload finds it
    page.reload()
    expect(page.get_by_text("Distilled student").first).to_be_visible(timeout=120_000)
    expect(page.get_by_text(re.compile(r"· 4 epochs · seed 0")).first).to_be_visible()
    page.get_by_role("link", name="Runs").first.click()
    expect(page.get_by_role("heading", name="Runs")).to_be_visible(timeout=60_000)
    expect(page.get_by_text("3 of 3 runs.")).to_be_visible(timeout=30_000)   # two distillations, one teacher
    box = page.get_by_role("combobox").filter(has_text="Runs to compare").first
    if not box.count():
        box = page.locator(".st-key-runs_compare input").first
    for n in ("3", "4"):
        box.click()
        page.get_by_role("option", name=re.compile(rf"{n} epochs")).first.click()
    page.keyboard.press("Escape")
    expect(page.get_by_text("Validation accuracy per epoch, runs overlaid")).to_be_attached(timeout=60_000)
    page.wait_for_timeout(1500)
    page.screenshot(path=str(ARTIFACTS / "runs.png"), full_page=True)


def test_upload_a_csv_train_reload_and_find_it_again(server, page, tmp_path):
    """Your data: a CSV through the file widget, a distillation on it, a reload: the dataset is still listed
    and can be picked in the sidebar."""
    from playwright.sync_api import expect
    from sklearn.datasets import load_wine
    d = load_wine(as_frame=True)
    csv = tmp_path / "wine.csv"
    d.frame.to_csv(csv, index=False)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.goto(f"{server}/data", timeout=120_000)
    expect(page.get_by_role("heading", name="Your data", exact=True)).to_be_visible(timeout=120_000)
    page.locator("input[type=file]").first.set_input_files(str(csv))
    expect(page.get_by_role("button", name="Add to my datasets")).to_be_visible(timeout=60_000)
    page.get_by_role("button", name="Add to my datasets").click()
    try:
        expect(page.get_by_text(re.compile("Added .*wine")).first).to_be_visible(timeout=60_000)
    finally:
        page.screenshot(path=str(ARTIFACTS / "data.png"), full_page=True)
    page.wait_for_timeout(1000)
    page.screenshot(path=str(ARTIFACTS / "data.png"), full_page=True)
    page.get_by_role("link", name="Distill").first.click()
    expect(page.get_by_role("button", name="Distill")).to_be_visible(timeout=120_000)
    page.get_by_role("button", name="Distill").click()
    expect(page.get_by_text("Distilled student").first).to_be_visible(timeout=180_000)
    page.wait_for_timeout(1000)
    page.screenshot(path=str(ARTIFACTS / "distill-uploaded.png"), full_page=True)
    assert "ws=" in page.url
    page.reload()
    page.get_by_role("link", name="Your data").first.click()
    expect(page.get_by_text(re.compile(r"wine: 178 rows, 3 classes")).first).to_be_visible(timeout=120_000)
    # and in the sidebar's picker
    page.locator("section[data-testid=stSidebar]").get_by_role("combobox").first.click()
    expect(page.get_by_role("option", name=re.compile(r"wine \(yours, 178 rows\)"))).to_be_visible(timeout=30_000)
