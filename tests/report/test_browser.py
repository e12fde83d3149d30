"""The page in a real browser (Debian's chromium + chromium-driver, driven by Selenium): text from
probes and archives never runs, the page logs no console error, and it requests nothing outside itself.

In CI the browser must be there (the test fails without it); on a user's machine it is skipped, saying why.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from runner.report import render
from runner.report.view import SEVERITY
from runner.results.model import Results, Status
from runner.results.probe_data import ZipChecks
from tests.support.npm import npm_package
from tests.support.paths import in_ci

GOLDEN = Path(__file__).parent / "golden"
#: What a hostile archive or library could put in front of the page; each sets a flag if it ever runs.
PAYLOADS = (
    '<script>window.__zipstore_pwned = "script"</script>',
    "<img src=x onerror=\"window.__zipstore_pwned = 'img'\">",
    '"><svg onload="window.__zipstore_pwned = \'attr\'">',
    "javascript:window.__zipstore_pwned='link'",
)


def _browser(env: dict[str, str] | None = None) -> Iterator[Any]:
    chromium = shutil.which("chromium") or shutil.which("google-chrome")  # Debian's, or GitHub runners'
    driver_path = shutil.which("chromedriver")
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        chromium = None
    if chromium is None or driver_path is None:
        message = "needs Debian's chromium and chromium-driver, and selenium (apt-get install chromium chromium-driver)"
        if in_ci():
            pytest.fail(message + ": CI installs them (.ci/run)")
        pytest.skip(message)
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    flags = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1400,1000")
    for flag in flags:
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    service = Service(driver_path, env={**os.environ, **(env or {})})
    driver = webdriver.Chrome(service=service, options=options)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    yield from _browser()


def hostile_results() -> Results:
    results = Results.read(GOLDEN / "results.json")
    for n, cell in enumerate(results.cells[:8]):
        payload = PAYLOADS[n % len(PAYLOADS)]
        cell.status, cell.reason, cell.detail = Status.FAIL, f"library said: {payload}", payload
        cell.warnings = [f"reader: {payload}"]
    archive = results.archives[0]
    archive.probe = PAYLOADS[0]
    archive.library = PAYLOADS[1]
    checks = archive.zip_checks or ZipChecks(checked=True)
    archive.zip_checks = replace(checks, problems=[PAYLOADS[2]], notes=[PAYLOADS[3]])
    results.environments[0].reason = PAYLOADS[1]
    return results


def test_the_page_runs_nothing_from_probes_or_archives_and_requests_nothing_outside(
    browser: Any, tmp_path: Path
) -> None:
    site = tmp_path / "site"
    render.write_site(hostile_results(), site)
    pages = sorted(site.glob("*.html"))
    assert {"index.html", "fixture-int32-random.html", "benchmark.html"} <= {p.name for p in pages}
    text = ""
    for page in pages:
        browser.get(page.resolve().as_uri())
        browser.find_element("css selector", "main")
        for details in browser.find_elements("css selector", "details")[:20]:
            browser.execute_script("arguments[0].open = true", details)
        assert browser.execute_script("return window.__zipstore_pwned === undefined"), f"a payload ran in {page.name}"
        text += browser.find_element("css selector", "body").text
        errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
        assert errors == [], (page.name, errors)
    assert "library said: <script>" in text
    requests = []
    for entry in browser.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            requests.append(message["params"]["request"]["url"])
    outside = [url for url in requests if not url.startswith((site.resolve().as_uri(), "data:"))]
    assert outside == [], outside
    browser.save_screenshot(str(tmp_path / "page.png"))
    assert (tmp_path / "page.png").stat().st_size > 10_000


def two_readers() -> Results:
    """The golden run with a second reader library, so the summary's filters have something to hide."""
    results = Results.read(GOLDEN / "results.json")
    for cell in results.cells:
        if cell.reader.probe == "zarr-fsspec":
            cell.reader.library, cell.reader.version = "gdal", "3.10.3"
    return results


def test_the_summary_answers_who_reads_whom_and_its_filters_work(browser: Any, tmp_path: Path) -> None:
    from selenium.webdriver.support.ui import Select

    site = tmp_path / "site"
    render.write_site(two_readers(), site)
    browser.get((site / "index.html").resolve().as_uri())
    summary = browser.find_element("id", "summary")
    cells = summary.find_elements("css selector", "td[id^='s-']")
    assert len(cells) == 6 and all(c.is_displayed() for c in cells)  # 2 writers x 3 readers
    Select(browser.find_element("id", "f-reader")).select_by_visible_text("gdal")
    visible = {c.get_attribute("data-reader") for c in cells if c.value_of_css_property("visibility") == "visible"}
    assert visible == {"gdal 3.10.3 · pip"}
    Select(browser.find_element("id", "f-reader")).select_by_index(0)
    browser.find_element("id", "f-search").send_keys("gdal")
    shown = [c for c in cells if c.value_of_css_property("visibility") == "visible"]
    assert len(shown) == 2 and {c.get_attribute("data-reader") for c in shown} == {"gdal 3.10.3 · pip"}
    browser.find_element("id", "f-search").clear()
    browser.execute_script("document.getElementById('f-search').dispatchEvent(new Event('input'))")
    worst = next(c for c in cells if "mismatch" in (c.get_attribute("class") or ""))
    worst.find_element("css selector", "a").click()
    target = browser.execute_script("return location.hash")
    assert "/fixture-" in browser.execute_script("return location.pathname")
    assert target.startswith("#cell-") and browser.find_element("id", target[1:]).is_displayed()
    for details in browser.find_elements("css selector", ".note details")[:3]:
        details.click()
    errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert errors == [], errors
    browser.execute_script("window.scrollTo(0, 0)")
    browser.save_screenshot(str(tmp_path / "summary.png"))
    assert (tmp_path / "summary.png").stat().st_size > 10_000


#: emoji and pictographs: the page must not need a font that has them (a status is never such a glyph alone)
EMOJI = re.compile("[\U0001f000-\U0001faff\u2600-\u27bf\u23e9-\u23fa\u2b50\u2b55]")


def test_no_page_needs_an_emoji_font(tmp_path: Path) -> None:
    render.write_site(Results.read(GOLDEN / "results.json"), tmp_path / "site")
    for page in sorted((tmp_path / "site").glob("*.html")):
        found = EMOJI.findall(page.read_text(encoding="utf-8"))
        assert found == [], f"{page.name}: {sorted(set(found))}"


@pytest.fixture(scope="module")
def browser_without_emoji(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """Chromium that sees only DejaVu (fontconfig told so): no emoji font, whatever this machine has."""
    fonts = Path("/usr/share/fonts/truetype/dejavu")
    if not fonts.is_dir():
        pytest.skip("needs Debian's fonts-dejavu-core (chromium depends on a font package that brings it)")
    conf = tmp_path_factory.mktemp("fonts") / "fonts.conf"
    cache = conf.parent / "cache"
    conf.write_text(
        f'<?xml version="1.0"?><!DOCTYPE fontconfig SYSTEM "fonts.dtd"><fontconfig><dir>{fonts}</dir>'
        f"<cachedir>{cache}</cachedir></fontconfig>"
    )
    yield from _browser({"FONTCONFIG_FILE": str(conf)})


def test_every_status_is_legible_without_an_emoji_font(browser_without_emoji: Any, tmp_path: Path) -> None:
    """The legend's marks, drawn by a Chromium with no emoji font: each has ink, each has its own shape, and
    each carries its word; then the whole summary as a screenshot (docs/marks.png was made this way)."""
    from tests.support.png import decode

    browser = browser_without_emoji
    site = tmp_path / "site"
    render.write_site(two_readers(), site)
    browser.get((site / "index.html").resolve().as_uri())
    fonts = browser.execute_script(
        "return [...document.fonts].length + ':' + document.fonts.check('12px \"Noto Color Emoji\"')"
    )
    assert fonts.endswith(":false") or fonts.startswith("0:"), fonts
    legend = browser.find_elements("css selector", "#summary .legend span")
    words = [s.text.split(":")[0].strip() for s in legend]
    assert words == [str(s) for s in (*SEVERITY, Status.SKIPPED)], words
    shapes = set()
    for span in legend:
        mark = span.find_element("css selector", "svg.mk")
        pixels = decode(mark.screenshot_as_png)
        background = pixels[0][0]
        ink = sum(p != background for row in pixels for p in row)
        assert ink >= 20, f"{span.text}: the mark has no ink"
        # what it looks like in grey (colour set aside: colour is never the only signal), in four levels
        shapes.add(tuple(tuple(sum(p) // 192 for p in row) for row in pixels))
    assert len(shapes) == len(legend), "two statuses look alike in grey"
    browser.save_screenshot(str(tmp_path / "marks.png"))
    assert (tmp_path / "marks.png").stat().st_size > 10_000


AXE = "axe-core@4.14.1"


@pytest.fixture(scope="module")
def axe_source() -> str:
    return (npm_package(AXE) / "axe.min.js").read_text(encoding="utf-8")


def axe_violations(browser: Any, source: str) -> list[dict[str, Any]]:
    browser.execute_script(source)
    script = """
        const done = arguments[arguments.length - 1];
        axe.run(document, {resultTypes: ["violations"]}).then(
            r => done(r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
                                              nodes: v.nodes.slice(0, 3).map(n => n.target.join(" "))}))),
            e => done([{id: "axe-error", impact: "critical", help: String(e), nodes: []}]));
    """
    browser.set_script_timeout(120)
    found: list[dict[str, Any]] = browser.execute_async_script(script)
    return found


def test_axe_finds_no_serious_or_critical_violation_on_any_page(browser: Any, axe_source: str, tmp_path: Path) -> None:
    site = tmp_path / "site"
    render.write_site(two_readers(), site)
    for page in sorted(site.glob("*.html")):
        browser.get(page.resolve().as_uri())
        bad = [v for v in axe_violations(browser, axe_source) if v["impact"] in ("serious", "critical")]
        assert bad == [], f"{page.name}: {bad}"


def test_the_filters_work_from_the_keyboard(browser: Any, tmp_path: Path) -> None:
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.keys import Keys

    site = tmp_path / "site"
    render.write_site(two_readers(), site)
    browser.get((site / "index.html").resolve().as_uri())
    reader = browser.find_element("id", "f-reader")
    reader.send_keys(Keys.TAB)  # focus moves on from the reader filter: it is in the tab order
    browser.execute_script("document.getElementById('f-writer').focus()")
    ActionChains(browser).send_keys(Keys.TAB).perform()  # from the writer filter to the reader filter
    assert browser.switch_to.active_element.get_attribute("id") == "f-reader"
    ActionChains(browser).send_keys(Keys.ARROW_DOWN).perform()  # the next choice: a library, not "all"
    chosen = browser.execute_script("return document.getElementById('f-reader').value")
    assert chosen
    cells = browser.find_elements("css selector", "#summary td[id^='s-']")
    shown = {c.get_attribute("data-reader") for c in cells if c.value_of_css_property("visibility") == "visible"}
    assert shown and all(r.split(" ")[0] == chosen for r in shown)
