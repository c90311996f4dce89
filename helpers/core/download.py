"""Chapters 1 and 3: resumable, verified, parallel HTTP downloads.

A file is fetched into ``<dest>.part`` and renamed to ``dest`` only once it is whole and verified,
so ``dest`` never holds a partial file. A transfer that breaks off is resumed with an HTTP Range
request, in the same run (``retries``) or in the next run (the ``.part`` file is kept for that).
A file that fails verification (size, checksum, or the caller's own check such as an image decode)
is deleted and fetched once more; the error names the URL, the file and what to do. A missing
(HTTP 404) or corrupt file raises :class:`BadDownload`, so that a caller can tell "the server has
no good copy" (replace the file) from a network failure (try again later).
"""

from __future__ import annotations

import hashlib
import os
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import requests
from tqdm import tqdm

CHUNK = 1 << 16
USER_AGENT = "genimg-book/0.1 (+https://jupyterbook.org)"


class DownloadError(RuntimeError):
    """A download that cannot complete; the message says what to do."""


class BadDownload(DownloadError):
    """The server answered, and its file is missing (HTTP 404) or corrupt: fetching again will not help.

    ``reason`` is the short form, for a log or a table (the message adds the URL and what to do).
    """

    def __init__(self, message: str, reason: str = ""):
        super().__init__(message)
        self.reason = reason or message


def file_digest(path: Path, algorithm: str = "md5") -> str:
    """Hex digest of a file, read in blocks (checksums of downloads and of carried data)."""
    h = hashlib.new(algorithm)
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def md5sum(path: Path) -> str:
    return file_digest(path, "md5")


def _offline_hint(url: str, dest: Path) -> str:
    return (f"Download {url} by other means and place it at {dest} "
            f"(the next run verifies it and goes on), or check the network.")


def _fetch_once(session: requests.Session, url: str, part: Path, timeout: float,
                progress: tqdm | None) -> int | None:
    """Append the rest of ``url`` to ``part``; the full size when the server said it."""
    have = part.stat().st_size if part.exists() else 0
    headers = {"User-Agent": USER_AGENT}
    if have:
        headers["Range"] = f"bytes={have}-"
    with session.get(url, headers=headers, stream=True, timeout=timeout) as resp:
        if resp.status_code == 416 and have:
            # Nothing left to send: the part file is already the whole file (or longer).
            return have
        if resp.status_code == 404:
            raise BadDownload(f"{url} does not exist (HTTP 404). {_offline_hint(url, part.with_suffix(''))}",
                              "missing on the server (HTTP 404)")
        if resp.status_code not in (200, 206):
            raise DownloadError(f"{url} answered HTTP {resp.status_code}. {_offline_hint(url, part.with_suffix(''))}")
        if resp.status_code == 200 and have:
            have = 0  # the server ignored the Range header: start again
        length = resp.headers.get("Content-Length")
        total = have + int(length) if length is not None else None
        if progress is not None and total is not None:
            progress.total, progress.n = total, have
            progress.refresh()
        with open(part, "ab" if have else "wb") as fh:
            for chunk in resp.iter_content(CHUNK):
                fh.write(chunk)
                if progress is not None:
                    progress.update(len(chunk))
        got = part.stat().st_size
        if total is not None and got < total:
            raise requests.ConnectionError(f"connection closed after {got} of {total} bytes")
        return total


def download_file(url: str, dest: str | Path, *, md5: str | None = None, size: int | None = None,
                  verify: Callable[[Path], None] | None = None, retries: int = 3,
                  timeout: float = 60.0, session: requests.Session | None = None,
                  show_progress: bool = False) -> Path:
    """Fetch ``url`` to ``dest`` unless a verified copy is there; return ``dest``.

    ``verify(path)`` may raise any exception to reject the file; a rejected file is fetched once
    more (it may have been damaged on the way) before :class:`BadDownload` is raised. On failure
    ``dest`` is absent; a broken-off transfer leaves ``dest.part`` for the next run to resume.
    """
    dest = Path(dest)
    if dest.exists():
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    session = session or requests.Session()
    progress = tqdm(desc=dest.name, unit="B", unit_scale=True, leave=False) if show_progress else None
    try:
        for last_try in (retries == 0, True):
            _fetch_with_retries(session, url, part, dest, timeout, progress, retries)
            try:
                _verify(url, part, dest, md5=md5, size=size, verify=verify)
                break
            except BadDownload:
                if last_try:
                    raise
    finally:
        if progress is not None:
            progress.close()
    os.replace(part, dest)
    return dest


def _fetch_with_retries(session, url: str, part: Path, dest: Path, timeout: float, progress,
                        retries: int) -> None:
    """The whole file into ``part``, resuming a broken-off transfer up to ``retries`` times."""
    last_error: Exception | None = None
    for attempt in range(retries + 1):
        try:
            _fetch_once(session, url, part, timeout, progress)
            return
        except (requests.ConnectionError, requests.Timeout,
                requests.exceptions.ChunkedEncodingError) as exc:
            last_error = exc
            if attempt < retries:
                time.sleep(min(2 ** attempt * 0.2, 5))
    raise DownloadError(
        f"{url}: transfer broke off {retries + 1} times ({last_error}); {part} is kept and the "
        f"next run resumes it. {_offline_hint(url, dest)}")


def _verify(url, part: Path, dest: Path, *, md5, size, verify) -> None:
    problem = None
    if size is not None and part.stat().st_size != size:
        problem = f"size {part.stat().st_size} bytes, expected {size}"
    elif md5 is not None and md5sum(part) != md5:
        problem = f"md5 {md5sum(part)}, expected {md5}"
    elif verify is not None:
        try:
            verify(part)
        except Exception as exc:  # the caller's check: any failure rejects the file
            problem = str(exc) or type(exc).__name__
    if problem:
        part.unlink(missing_ok=True)
        raise BadDownload(f"{url} gave a corrupt file ({problem}); it was deleted. "
                          f"Run again to fetch it anew. {_offline_hint(url, dest)}",
                          f"corrupt on the server ({problem})")


@dataclass
class Job:
    url: str
    dest: Path
    md5: str | None = None
    size: int | None = None
    verify: Callable[[Path], None] | None = None  # this file's own check, else download_many's


def download_many(jobs: list[Job], *, workers: int = 16, verify: Callable[[Path], None] | None = None,
                  retries: int = 3, desc: str = "download") -> dict[Path, DownloadError]:
    """Fetch every job in parallel; finished files are skipped. Failures are returned, not raised:
    ``{dest: error}`` (``str(error)`` is the reason; a :class:`BadDownload` is missing or corrupt
    on the server), so that one bad file never stops the others."""
    todo = [j for j in jobs if not Path(j.dest).exists()]
    failures: dict[Path, DownloadError] = {}
    if not todo:
        return failures
    session = requests.Session()
    adapter = requests.adapters.HTTPAdapter(pool_connections=workers, pool_maxsize=workers)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    with ThreadPoolExecutor(max_workers=workers) as pool, \
            tqdm(total=len(jobs), initial=len(jobs) - len(todo), desc=desc, unit="file") as bar:
        futures = {pool.submit(download_file, j.url, j.dest, md5=j.md5, size=j.size, verify=j.verify or verify,
                               retries=retries, session=session): j for j in todo}
        for fut in as_completed(futures):
            job = futures[fut]
            try:
                fut.result()
            except DownloadError as exc:
                failures[Path(job.dest)] = exc
            bar.update(1)
    return failures
