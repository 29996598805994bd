"""A classroom on one server: N headless Chromium sessions open Distill and press it together.

    python -m bench.classroom [--sessions 20] [--vary]

Cold cache (a fresh cache folder: the teacher is not trained yet), then warm (same server, the
teacher cached: the sessions reload the page, set α one step lower and press Distill again, so
new students train). Prints, per phase, each session's wait from
its click to the results on screen (median, max; timed inside each page, `bench.serve.RESULT_CLOCK`), that every session got its results with no
exception on the page, the queue positions the sessions were shown, and the server's memory
(Streamlit and its worker processes).

--vary gives every session its own temperature (T = 1, 1.5, 2, ...): N distinct student runs
over one shared teacher, instead of N identical requests (which the runner trains once).
Targets (issue "Runs that outlive the page"), N = 20 on 2 cores: 20/20 results, cold median < 30 s
and max < 45 s, warm median < 10 s.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import statistics
import tempfile
import time

from bench.serve import CHROMIUM, CHROMIUM_ARGS, RESULT_CLOCK, RESULT_TIME, Server, chromium_cpu_seconds, result_clock

# what a session was told while it waited (collected inside the page: bench.serve.RESULT_CLOCK)
QUEUE_TEXT = r"(Queued: [^·]*?ahead of yours|Waiting for [^…]*…|shared with \d+ other sessions?)"


async def session(browser, url: str, i: int, temperature: float | None, start: asyncio.Event, out: dict):
    from playwright.async_api import expect
    ctx = await browser.new_context(viewport={"width": 1280, "height": 900})
    page = await ctx.new_page()
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    await page.goto(f"{url}/distill", timeout=300_000)
    await expect(page.get_by_role("button", name="Distill")).to_be_visible(timeout=300_000)
    if temperature is not None:
        slider = page.get_by_role("slider", name="Temperature T")
        await slider.focus()
        for _ in range(int(round((temperature - 4.0) / 0.5)) if temperature > 4 else int(round((4.0 - temperature) / 0.5))):
            await page.keyboard.press("ArrowRight" if temperature > 4 else "ArrowLeft")
    out["page"], out["ctx"], out["errors"] = page, ctx, errors
    out["ready"] = True
    await start.wait()
    await press_and_wait(page, out, "cold", "0.9")


async def press_and_wait(page, out: dict, phase: str, alpha: str):
    """Press Distill and wait for the results of this α (the caption under the verdict names it).

    Timed inside the page, from the click event to the first frame painted with the results; the
    page is not polled while it waits (a poll walks its DOM on the server's cores), only asked once
    a second whether the clock has stopped."""
    await page.evaluate(RESULT_CLOCK, result_clock(f"α = {re.escape(alpha)} ·", seen=QUEUE_TEXT))
    await page.get_by_role("button", name="Distill").click()
    handle = await page.wait_for_function(RESULT_TIME, polling=1000, timeout=600_000)
    got = await handle.json_value()
    out[phase] = got["seconds"]
    out[f"{phase}_seen"] = sorted(got["seen"])
    out[f"{phase}_how"] = f"{'live view, ' if got['live'] else ''}{got['batches']} DOM updates"
    exc = await page.locator("[data-testid='stException']").count()
    out[f"{phase}_exception"] = exc


async def run(n: int, vary: bool) -> None:
    from playwright.async_api import async_playwright, expect
    cache = tempfile.mkdtemp(prefix="kdlab-classroom-")
    with Server(cache) as server:
        print(f"server {server.url}, cache {cache} (cold), {n} sessions{' with their own T' if vary else ''}")
        async with async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
            start = asyncio.Event()
            outs = [dict() for _ in range(n)]
            temps = [1.0 + 0.5 * (i % 19) for i in range(n)] if vary else [None] * n
            tasks = [asyncio.ensure_future(session(browser, server.url, i, temps[i], start, outs[i])) for i in range(n)]
            while not all(o.get("ready") for o in outs):
                if any(t.done() and t.exception() for t in tasks):
                    raise next(t.exception() for t in tasks if t.done() and t.exception())
                await asyncio.sleep(0.2)
            print(f"{n} sessions on the Distill page; server memory {server.rss_mb():.0f} MB. Pressing Distill…")
            cpu = (server.cpu_seconds(), chromium_cpu_seconds(), time.perf_counter())
            start.set()
            await asyncio.gather(*tasks)
            report("cold cache", outs, "cold", server, cpu)
            # warm: the teacher is cached; each session asks for new students (α one step lower)
            for o in outs:
                await o["page"].reload()
                await o["page"].get_by_text("Distilled student").first.wait_for(timeout=300_000)
                slider = o["page"].get_by_role("slider", name="α (weight of the soft targets)")
                await slider.focus()
                await o["page"].keyboard.press("ArrowLeft")
            # the reloaded pages draw their last results (charts, tables) before the class presses again
            for o in outs:
                await expect(o["page"].locator(".js-plotly-plot")).to_have_count(2, timeout=300_000)
            settle = (chromium_cpu_seconds(), time.perf_counter())
            await asyncio.sleep(5)
            print(f"\npages reloaded and drawn; the {n} browsers then used "
                  f"{(chromium_cpu_seconds() - settle[0]) / (time.perf_counter() - settle[1]):.2f} of a core at rest")
            cpu = (server.cpu_seconds(), chromium_cpu_seconds(), time.perf_counter())
            await asyncio.gather(*[press_and_wait(o["page"], o, "warm", "0.85") for o in outs])
            report("warm cache", outs, "warm", server, cpu)
            await browser.close()


def report(title: str, outs: list[dict], phase: str, server: Server, cpu: tuple) -> None:
    wall = time.perf_counter() - cpu[2]
    server_cpu, browser_cpu = server.cpu_seconds() - cpu[0], chromium_cpu_seconds() - cpu[1]
    waits = [o[phase] for o in outs if phase in o]
    exceptions = sum(o.get(f"{phase}_exception", 0) for o in outs) + sum(len(o["errors"]) for o in outs)
    print(f"\n== {title}: {len(waits)}/{len(outs)} sessions got results, {exceptions} exceptions")
    print(f"   wait click -> results: median {statistics.median(waits):.1f} s, max {max(waits):.1f} s, "
          f"min {min(waits):.1f} s")
    print(f"   server memory (Streamlit + workers): {server.rss_mb():.0f} MB")
    print(f"   CPU time over these {wall:.0f} s: server (Streamlit + workers) {server_cpu:.0f} s, "
          f"the {len(outs)} browsers {browser_cpu:.0f} s (2 cores give {2 * wall:.0f} s)")
    for i, o in enumerate(outs):
        print(f"   session {i:2d}: {o.get(phase, float('nan')):5.1f} s  ({o.get(f'{phase}_how', '')})  "
              f"saw: {'; '.join(o.get(f'{phase}_seen', [])) or '-'}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sessions", type=int, default=20)
    ap.add_argument("--vary", action="store_true", help="every session its own temperature")
    args = ap.parse_args()
    asyncio.run(run(args.sessions, args.vary))


if __name__ == "__main__":
    main()
