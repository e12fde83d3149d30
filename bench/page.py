#!/usr/bin/env python3
"""The page's first view in a real browser (Debian's chromium, headless, driven by Selenium): what it
transfers and how soon it is interactive, for two sites side by side (before and after a change).

    python bench/page.py BEFORE_SITE AFTER_SITE [--rounds 7]

Both sites are served over HTTP on loopback (a real transfer, so the browser's Resource Timing counts
bytes), each loaded ``--rounds`` times, alternating, in a fresh tab with the cache disabled. Per load:

- ``first_view_bytes``: index.html and everything it loads (transferSize of the navigation and its
  resources: the page, its script and styles, plotly.js if it asks for it);
- ``dom_content_loaded_s`` and ``load_s``: Navigation Timing, from the start of the navigation;
- ``interactive_s``: the first moment after DOMContentLoaded from which the main thread has no long task
  (over 50 ms) left: the end of the last long task, else DOMContentLoaded (a PerformanceObserver installed
  before the page's own scripts; the simple part of Lighthouse's TTI definition);
- ``filter_response_ms``: from a change of the summary's reader filter to the next frame.

Prints ``name_before``, ``name_after`` (median [min–max]) and ``name_ratio`` (after / before, median of the
round-by-round ratios) per figure. Goals (#20): first view ≤ 500 KB and interactive ≤ 1 s after.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

OBSERVER = """
window.__longtasks = [];
try {
  new PerformanceObserver(list => {
    for (const e of list.getEntries()) window.__longtasks.push(e.startTime + e.duration);
  }).observe({type: "longtask", buffered: true});
} catch (e) { window.__longtasks = null; }
"""
MEASURE = """
const done = arguments[arguments.length - 1];
const finish = () => {
  const nav = performance.getEntriesByType("navigation")[0];
  const bytes = nav.transferSize + performance.getEntriesByType("resource").reduce((n, r) => n + r.transferSize, 0);
  const tasks = (window.__longtasks || []).filter(t => t > nav.domContentLoadedEventEnd);
  const interactive = Math.max(nav.domContentLoadedEventEnd, ...tasks);
  let response = null;
  const select = document.getElementById("f-reader");
  if (select && select.options.length > 1) {
    const t0 = performance.now();
    select.selectedIndex = 1;
    select.dispatchEvent(new Event("change"));
    requestAnimationFrame(() => {
      response = performance.now() - t0;
      select.selectedIndex = 0;
      select.dispatchEvent(new Event("change"));
      done({bytes, dcl: nav.domContentLoadedEventEnd, load: nav.loadEventEnd, interactive, response});
    });
  } else {
    done({bytes, dcl: nav.domContentLoadedEventEnd, load: nav.loadEventEnd, interactive, response});
  }
};
if (document.readyState === "complete") setTimeout(finish, 300);
else addEventListener("load", () => setTimeout(finish, 300));
"""


class Quiet(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@contextmanager
def served(root: Path) -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(Quiet, directory=str(root)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/index.html"
    finally:
        server.shutdown()
        server.server_close()


def browser() -> Any:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or shutil.which("google-chrome") or "chromium"
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--window-size=1400,1000",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver") or "chromedriver"), options=options)
    driver.execute_cdp_cmd("Network.enable", {})
    driver.execute_cdp_cmd("Network.setCacheDisabled", {"cacheDisabled": True})
    driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": OBSERVER})
    driver.set_script_timeout(120)
    driver.set_page_load_timeout(300)
    return driver


def load(driver: Any, url: str) -> dict[str, float]:
    driver.get("about:blank")
    driver.get(url)
    found: dict[str, Any] = driver.execute_async_script(MEASURE)
    return {
        "first_view_bytes": float(found["bytes"]),
        "dom_content_loaded_s": found["dcl"] / 1000,
        "load_s": found["load"] / 1000,
        "interactive_s": found["interactive"] / 1000,
        "filter_response_ms": float(found["response"]) if found["response"] is not None else float("nan"),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("before", type=Path)
    parser.add_argument("after", type=Path)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args(argv)
    samples: dict[str, dict[str, list[float]]] = {"before": {}, "after": {}}
    driver = browser()
    try:
        with served(args.before) as before, served(args.after) as after:
            load(driver, before), load(driver, after)  # warm the browser itself once each (not counted)
            for _ in range(args.rounds):
                for name, url in (("before", before), ("after", after)):
                    for key, value in load(driver, url).items():
                        samples[name].setdefault(key, []).append(value)
    finally:
        driver.quit()
    for key in samples["after"]:
        for name in ("before", "after"):
            values = samples[name][key]
            print(f"{key}_{name}={statistics.median(values):.4g} [{min(values):.4g}–{max(values):.4g}]")
        ratios = [a / b for a, b in zip(samples["after"][key], samples["before"][key], strict=True) if b]
        if ratios:
            print(f"{key}_ratio={statistics.median(ratios):.3g} [{min(ratios):.3g}–{max(ratios):.3g}]")
    print(f"rounds={args.rounds}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
