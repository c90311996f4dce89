"""Every chapter, as a reader sees it: the rendered site opened in headless Chromium.

``make test`` builds the book with warnings as errors, but a page can build and still be broken in a
browser: an image that does not load, a link to a page that is not there, a script error, a
traceback printed by a cell. These checks open each page as a reader's browser does (Debian's
``chromium`` with its ``chromedriver``, driven by Selenium, offline: the site is served on
127.0.0.1) and list what is wrong with it.
"""

from __future__ import annotations

import functools
import http.server
import re
import shutil
import threading
from pathlib import Path
from urllib.parse import unquote, urljoin, urlsplit

INSTALL = ("headless Chromium is needed for the site test: on Debian/Ubuntu `sudo apt-get install "
           "chromium chromium-driver` (.ci/run installs them), or skip this test with "
           "`make test SKIP_BROWSER=1`")


class Site:
    """A folder of HTML served on 127.0.0.1 for as long as the object lives."""

    def __init__(self, root: Path):
        self.root = Path(root)
        handler = functools.partial(_QuietHandler, directory=str(self.root))
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}/"

    def url(self, page: str) -> str:
        return urljoin(self.base, page)

    def file_of(self, url: str) -> Path | None:
        """The file a same-site URL names (None for another site)."""
        if not url.startswith(self.base):
            return None
        path = unquote(urlsplit(url).path).lstrip("/")
        target = self.root / path
        return target / "index.html" if target.is_dir() or path == "" else target

    def close(self) -> None:
        self.server.shutdown()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # the test's output is the problems found, not a request log
        pass


def browser():
    """Headless Chromium through the system's chromedriver (never a downloaded one: no network)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    chromium, driver = shutil.which("chromium") or shutil.which("chromium-browser"), shutil.which("chromedriver")
    if not chromium or not driver:
        raise RuntimeError(INSTALL)
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,900"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(executable_path=driver), options=options)


BROKEN_IMAGES = "return [...document.images].filter(i => !i.complete || i.naturalWidth === 0).map(i => i.src)"
LINKS = "return [...document.querySelectorAll('a[href]')].map(a => a.href)"


def _ids(path: Path) -> set[str]:
    return set(re.findall(r'\sid="([^"]+)"', path.read_text(encoding="utf-8", errors="replace")))


def dead_links(site: Site, links: list[str]) -> list[str]:
    """Same-site links whose file is missing, or whose #anchor is not on the page it names."""
    dead = []
    for link in dict.fromkeys(links):
        target = site.file_of(link)
        if target is None:
            continue
        fragment = urlsplit(link).fragment
        if not target.is_file():
            dead.append(f"{link} (no file)")
        elif fragment and target.suffix == ".html" and unquote(fragment) not in _ids(target):
            dead.append(f"{link} (no #{fragment} on that page)")
    return dead


def is_error(entry: dict, base: str) -> bool:
    """A script that failed (an uncaught exception) or a file of the site the page could not load;
    not a library's own console message, not the favicon a browser asks every site for, and not a
    file of another site (MathJax's CDN): the test runs offline, where no other site answers."""
    message = entry["message"]
    if entry["level"] != "SEVERE" or entry.get("source") not in ("javascript", "network"):
        return False
    if entry.get("source") == "network":
        return message.startswith(base) and "favicon.ico" not in message
    return True


def page_problems(driver, site: Site, page: str) -> list[str]:
    """What is wrong with one page in the browser: script errors, images that did not load, dead
    links, a traceback shown to the reader."""
    driver.get_log("browser")  # forget the previous page's messages
    driver.get(site.url(page))
    problems = [f"script error: {e['message']}" for e in driver.get_log("browser") if is_error(e, site.base)]
    problems += [f"image did not load: {src}" for src in driver.execute_script(BROKEN_IMAGES)]
    problems += [f"dead link: {link}" for link in dead_links(site, driver.execute_script(LINKS))]
    if "Traceback" in driver.find_element("tag name", "body").text:
        problems.append("the page shows a Traceback")
    return [f"{page}: {p}" for p in problems]


def search_hits(driver, site: Site, word: str, wait: float = 20.0) -> list[str]:
    """The pages (relative URLs) the site's own search page lists for ``word`` (Sphinx's search
    runs in the browser, from searchindex.js)."""
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get(site.url(f"search.html?q={word}"))
    hits = "return [...document.querySelectorAll('#search-results li a')].map(a => a.getAttribute('href'))"
    try:
        WebDriverWait(driver, wait).until(lambda d: d.execute_script(hits))
    except Exception:  # selenium's TimeoutException: no hit in time
        return []
    return driver.execute_script(hits)


def pages(root: Path) -> list[str]:
    """Every page of the site a reader can reach (not the search page, checked apart)."""
    skip = {"search.html", "genindex.html"}
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*.html")
                  if p.name not in skip and not p.relative_to(root).parts[0].startswith("_"))
