"""The rendered book in headless Chromium (after ``make build-strict``): every page loads without a
script error, every image loads, every internal link resolves, the search finds "ConvNeXt", no page
shows a traceback; one screenshot per page in ``_build/screenshots/``. And the checks themselves
catch a broken page."""

import os
from pathlib import Path

import pytest

from site_check import Site, browser, page_problems, pages, search_hits

REPO = Path(__file__).resolve().parents[1]
HTML = Path(os.environ.get("BOOK_SITE", REPO / "_build" / "smoke" / "_build" / "html"))
SCREENSHOTS = REPO / "_build" / "screenshots"


@pytest.fixture(scope="module")
def driver():
    d = browser()
    yield d
    d.quit()


@pytest.fixture(scope="module")
def site():
    if not (HTML / "index.html").exists():
        pytest.fail(f"no built site at {HTML.relative_to(REPO) if HTML.is_relative_to(REPO) else HTML}: "
                    f"run `make build-strict` first (make test does)")
    s = Site(HTML)
    yield s
    s.close()


def test_every_page_works_in_a_browser(driver, site):
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    found, problems = pages(HTML), []
    assert "notebooks/04_training.html" in found and "index.html" in found
    for page in found:
        problems += page_problems(driver, site, page)
        driver.save_screenshot(str(SCREENSHOTS / (page.replace("/", "_").removesuffix(".html") + ".png")))
    assert not problems, "\n".join(problems)


def test_no_page_shows_a_path_of_the_machine_that_built_it(site):
    roots = {str(REPO), str(Path.home())} - {"/"}
    found = [f"{page}: {root}" for page in pages(HTML) for root in roots
             if root in (HTML / page).read_text(encoding="utf-8", errors="replace")]
    assert not found, "\n".join(found)


def test_the_search_finds_convnext(driver, site):
    hits = search_hits(driver, site, "ConvNeXt")
    assert "notebooks/04_training.html" in hits, hits


BROKEN = """<html><body><h1>A broken page</h1>
<img src="_images/missing.png"><img src="ok.svg">
<a href="other.html">a page that is not there</a><a href="index.html#nowhere">a missing anchor</a>
<a href="index.html#here">fine</a><a href="https://example.org/">another site: not checked</a>
<pre>Traceback (most recent call last):</pre>
<script src="missing.js"></script><script src="https://cdn.invalid/offline.js"></script>
<script>undefinedFunction();</script></body></html>"""
SVG = '<svg xmlns="http://www.w3.org/2000/svg" width="4" height="4"><rect width="4" height="4"/></svg>'


def test_the_checks_catch_a_broken_page(driver, tmp_path):
    (tmp_path / "index.html").write_text('<html><body><p id="here">fine</p></body></html>')
    (tmp_path / "broken.html").write_text(BROKEN)
    (tmp_path / "ok.svg").write_text(SVG)
    s = Site(tmp_path)
    try:
        problems = "\n".join(page_problems(driver, s, "broken.html"))
        assert page_problems(driver, s, "index.html") == []
    finally:
        s.close()
    assert "image did not load" in problems and "missing.png" in problems and "ok.svg" not in problems
    assert "other.html (no file)" in problems and "no #nowhere" in problems and "#here" not in problems
    assert "script error" in problems and "undefinedFunction" in problems
    assert "Traceback" in problems and "example.org" not in problems
    assert "missing.js" in problems and "cdn.invalid" not in problems  # another site: unreachable offline
