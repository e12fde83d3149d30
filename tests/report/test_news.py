"""What reaches people who do not open the page: the Atom feed (one entry per night that changed something,
made from the history), a badge per library version (SVG), a JSON file per writer × reader pair. The feed
is checked against RFC 4287's required elements and read by feedparser; the badges parse as SVG."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from datetime import datetime
from pathlib import Path

import feedparser

from runner.report import news, render
from runner.report import view as report
from runner.results.model import Results, Status
from tests.results.test_history import fsspec_breaks, night

ATOM = "{http://www.w3.org/2005/Atom}"
SVG = "{http://www.w3.org/2000/svg}"
GOLDEN = Path(__file__).parent / "golden" / "results.json"
RFC3339 = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$")


def check_atom(path: Path) -> ET.Element:
    """RFC 4287: the feed and each entry have exactly one id, title and updated (an RFC 3339 date with its
    zone); the feed has an author (so its entries need none); ids are unique; feedparser reads it as Atom."""
    root = ET.parse(path).getroot()
    assert root.tag == f"{ATOM}feed"
    for element in [root, *root.findall(f"{ATOM}entry")]:
        for name in ("id", "title", "updated"):
            assert len(element.findall(f"{ATOM}{name}")) == 1, (element.tag, name)
        stamp = element.findtext(f"{ATOM}updated") or ""
        assert RFC3339.match(stamp), stamp
        datetime.fromisoformat(stamp)
    assert root.find(f"{ATOM}author/{ATOM}name") is not None
    ids = [e.findtext(f"{ATOM}id") for e in root.findall(f"{ATOM}entry")]
    assert len(ids) == len(set(ids))
    parsed = feedparser.parse(path.read_bytes())
    assert parsed.version == "atom10" and not parsed.bozo, parsed.get("bozo_exception")
    return root


def test_the_feed_has_one_entry_per_night_that_changed_something(tmp_path: Path) -> None:
    site = tmp_path / "site"
    assert night(tmp_path, "9.9.9") == 0  # the first night: nothing to compare with, no entry
    assert check_atom(site / "feed.xml").findall(f"{ATOM}entry") == []
    assert night(tmp_path, "9.9.9") == 0  # nothing changed: no entry
    assert check_atom(site / "feed.xml").findall(f"{ATOM}entry") == []
    assert night(tmp_path, "9.9.10", fsspec_breaks) == 0
    entries = check_atom(site / "feed.xml").findall(f"{ATOM}entry")
    assert len(entries) == 1
    title = entries[0].findtext(f"{ATOM}title") or ""
    assert "6 regression(s)" in title and "2 version change(s)" in title
    content = entries[0].findtext(f"{ATOM}content") or ""
    assert "zarr 9.9.9 -> 9.9.10" in content and "regression:" in content and "zip:: is broken" in content
    assert night(tmp_path, "9.9.11") == 0  # fixed: a second entry, newest first
    entries = check_atom(site / "feed.xml").findall(f"{ATOM}entry")
    assert len(entries) == 2 and "6 fix(es)" in (entries[0].findtext(f"{ATOM}title") or "")
    run = Results.read(site / "results.json").run.id
    assert entries[0].findtext(f"{ATOM}id") == f"urn:zipstore-matrix:run:{run}"


def test_a_library_message_cannot_break_the_feed(tmp_path: Path) -> None:
    def hostile(task: dict[str, object]) -> tuple[dict[str, object] | None, dict[str, object] | None]:
        run, record = fsspec_breaks(task)
        if record and record.get("status") == "error":
            record = {**record, "message": "]]></content><entry>&bogus; <script>x</script>\x0b"}
        return run, record

    assert night(tmp_path, "1") == 0
    assert night(tmp_path, "2", hostile) == 0
    entries = check_atom(tmp_path / "site" / "feed.xml").findall(f"{ATOM}entry")
    assert len(entries) == 1 and "<script>x</script>" in (entries[0].findtext(f"{ATOM}content") or "")


def test_each_library_version_has_a_badge_that_is_svg_and_counts_its_cells(tmp_path: Path) -> None:
    results = Results.read(GOLDEN)
    summary = report.summary(results, {})
    made = news.badges(summary)
    assert made and {b.name for b in made} == set(summary.readers) | {w for w in summary.writers}
    render.write_site(results, tmp_path / "site")
    tried = [c for c in results.cells if c.status is not Status.SKIPPED]
    for badge in made:
        root = ET.parse(tmp_path / "site" / badge.path).getroot()
        assert root.tag == f"{SVG}svg" and int(root.get("width", "0")) > 0 and root.get("height") == "20"
        assert root.findtext(f"{SVG}title") == badge.alt
        library, version = badge.name.split(" · ")[0].split(" ", 1)
        as_reader = [c for c in tried if (c.reader.library, c.reader.version) == (library, version)]
        assert badge.as_reader.tried == len(as_reader)
        assert badge.as_reader.passed == sum(c.status is Status.PASS for c in as_reader)
    html = (tmp_path / "site" / "index.html").read_text()
    assert all(f'src="{b.path}"' in html for b in made)


def test_pair_files_cover_every_tried_cell_once(tmp_path: Path) -> None:
    results = Results.read(GOLDEN)
    render.write_site(results, tmp_path / "site")
    index = json.loads((tmp_path / "site" / "pairs" / "index.json").read_text())
    seen = []
    for pair in index["pairs"]:
        body = json.loads((tmp_path / "site" / pair["file"]).read_text())
        assert (body["writer"], body["reader"]) == (pair["writer"], pair["reader"])
        assert sum(body["counts"].values()) == len(body["cells"])
        seen += [c["id"] for c in body["cells"]]
    assert sorted(seen) == sorted(c.id for c in results.cells if c.status is not Status.SKIPPED)


def test_pages_of_a_fixture_gone_from_the_run_are_removed(tmp_path: Path) -> None:
    results = Results.read(GOLDEN)
    site = tmp_path / "site"
    render.write_site(results, site)
    assert (site / "fixture-sharded.html").is_file()
    results.cells = [c for c in results.cells if c.fixture != "sharded"]
    results.archives = [a for a in results.archives if a.fixture != "sharded"]
    render.write_site(results, site)
    assert not (site / "fixture-sharded.html").exists() and (site / "fixture-int32-random.html").is_file()
