"""In a real browser: a lesson's link opens its page with its settings, and presentation mode reads
at 1280 × 720 (no chart title clipped, no legend over a title). Skips like tests/test_browser.py."""

from __future__ import annotations

from kdcore.lessons import BY_SLUG
from test_browser import ARTIFACTS, page, server  # noqa: F401  (fixtures)
from urllib.parse import urlencode

import pytest

pytestmark = pytest.mark.browser

# for every chart: its svg box, its title's box and its legend's box (None where it has none)
BOXES_JS = """() => [...document.querySelectorAll('.js-plotly-plot')].map(p => {
  const box = e => { if (!e) return null; const r = e.getBoundingClientRect(); return [r.left, r.top, r.right, r.bottom]; };
  return {svg: box(p.querySelector('.main-svg')), title: box(p.querySelector('.gtitle')),
          legend: box(p.querySelector('.legend')), plot: box(p.querySelector('.nsewdrag')), text: (p.querySelector('.gtitle') || {}).textContent || ''};
})"""


def overlap(a, b) -> bool:
    return a is not None and b is not None and a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def test_a_lesson_link_opens_its_page_with_its_settings(server, page, digits_teacher):
    from playwright.sync_api import expect
    lesson = BY_SLUG["soft-targets"]
    page.goto(f"{server}/{lesson.page}?{urlencode(lesson.params)}", timeout=120_000)
    expect(page.get_by_text("Temperature T").first).to_be_visible(timeout=120_000)
    slider = page.get_by_role("slider", name="Temperature T")
    expect(slider).to_have_attribute("aria-valuetext", "8", timeout=30_000)
    expect(page.get_by_label("Rank (1 = most confusing)")).to_have_value("2")
    assert "temperature_T=8" in page.url and "temperature_rank=2" in page.url
    expect(page.get_by_text("could not be used")).to_have_count(0)


def test_presentation_mode_reads_at_1280x720(server, page, digits_teacher):
    from playwright.sync_api import expect
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.set_viewport_size({"width": 1280, "height": 720})
    page.goto(f"{server}/temperature?present=1&temperature_T=8", timeout=120_000)
    expect(page.get_by_text("presentation mode").first).to_be_visible(timeout=120_000)
    page.wait_for_selector(".js-plotly-plot .gtitle", timeout=60_000)
    page.wait_for_timeout(1500)
    page.screenshot(path=str(ARTIFACTS / "presentation-temperature.png"))
    page.locator(".js-plotly-plot").nth(1).scroll_into_view_if_needed()
    page.wait_for_timeout(500)
    page.screenshot(path=str(ARTIFACTS / "presentation-temperature-charts.png"))
    assert page.locator('[data-testid="stToolbar"]').is_hidden()
    charts = page.evaluate(BOXES_JS)
    assert charts
    for c in charts:
        svg, title = c["svg"], c["title"]
        if title is None:
            continue
        assert svg[0] - 1 <= title[0] and title[2] <= svg[2] + 1 and svg[1] - 1 <= title[1], c   # not clipped
        assert not overlap(c["legend"], title), c                                              # legend clear of it
        assert c["plot"] is None or title[3] <= c["plot"][1] + 2, c                            # above the plot
        assert title[3] - title[1] >= 18, c      # projector type: the title's line is at least 18 px high
