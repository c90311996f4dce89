"""Dress rehearsal of Chapter 1's data step: the stand-in COCO served on 127.0.0.1, as COCO's server answers.

The data step reaches it through ``BOOK_COCO_URL`` exactly as it would reach a user's mirror:
GET and HEAD of the three folders of COCO's server, single byte ranges (a broken transfer is
resumed), 404 for the missing files, and one broken first transfer of each "flaky" file.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

from ..core.paths import UnsafePathError, inside
from .coco_annotations import SUBSETS
from .coco_mirror import read_manifest


class _MirrorServer(ThreadingHTTPServer):
    """A loopback server of one mirror tree: its root, and which transfers break off once."""

    daemon_threads = True

    def __init__(self, root: Path, flaky: set[str]):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.root, self.flaky = root, flaky
        self.lock, self.broken = threading.Lock(), set()

    def breaks_now(self, path: str, first: bool) -> bool:
        """True once per flaky file: its first whole transfer breaks off halfway."""
        with self.lock:
            breaks = first and path in self.flaky and path not in self.broken
            if breaks:
                self.broken.add(path)
        return breaks


def serve(root: Path) -> tuple[str, Callable[[], None]]:
    """Serve ``root`` on 127.0.0.1 (a free port) from a daemon thread: ``(base_url, stop)``.

    ``base_url`` has no trailing slash: ``base_url + "/train2017/" + file_name``. Only the three
    folders of COCO's server are served; anything else answers 404, as do the missing files.
    """
    manifest = read_manifest(Path(root)) or {}
    flaky = {f"/{s}/{i:012d}.jpg" for s, kinds in manifest.get("bad", {}).items() for i in kinds.get("flaky", [])}
    server = _MirrorServer(Path(root).resolve(), flaky)
    thread = threading.Thread(target=server.serve_forever, name="coco-mirror", daemon=True)
    thread.start()

    def stop() -> None:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)

    return f"http://127.0.0.1:{server.server_address[1]}", stop


class _Handler(BaseHTTPRequestHandler):
    """GET and HEAD of files, with single byte ranges (``bytes=N-`` or ``bytes=N-M``)."""

    server: _MirrorServer

    def log_message(self, *args):  # quiet: a book build's log is not the place for access lines
        pass

    def do_HEAD(self):
        self._answer(head=True)

    def do_GET(self):
        self._answer(head=False)

    def _answer(self, head: bool) -> None:
        path = unquote(urlsplit(self.path).path)
        body = _file(self.server.root, path)
        if body is None:
            self.send_error(404, "Not Found")
            return
        start, end = _byte_range(self.headers.get("Range"), len(body))
        if start is None:
            self._headers(416, {"Content-Range": f"bytes */{len(body)}", "Content-Length": "0"})
            return
        partial = (start, end) != (0, len(body))
        headers = {"Content-Type": "application/zip" if path.endswith(".zip") else "image/jpeg",
                   "Accept-Ranges": "bytes", "Content-Length": str(end - start)}
        if partial:
            headers["Content-Range"] = f"bytes {start}-{end - 1}/{len(body)}"
        self._headers(206 if partial else 200, headers)
        if not head:
            self._send(path, body[start:end], first=not partial)

    def _headers(self, status: int, headers: dict[str, str]) -> None:
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.end_headers()

    def _send(self, path: str, data: bytes, first: bool) -> None:
        if self.server.breaks_now(path, first):  # a transfer broken off halfway: the client retries and resumes
            self.wfile.write(data[:len(data) // 2])
            self.close_connection = True
            return
        self.wfile.write(data)


def _file(root: Path, path: str) -> bytes | None:
    top = path.lstrip("/").split("/", 1)[0]
    if top not in ("annotations", *SUBSETS):
        return None
    try:
        full = inside(root, path.lstrip("/"))
    except UnsafePathError:
        return None
    return full.read_bytes() if full.is_file() else None


def _byte_range(header: str | None, size: int) -> tuple[int | None, int]:
    """``(start, end)`` (end exclusive) of a ``Range`` header; ``(None, size)`` if unsatisfiable."""
    if not header or not header.startswith("bytes=") or "," in header:
        return 0, size
    first, _, last = header[len("bytes="):].partition("-")
    try:
        start = int(first) if first else size - int(last)
        end = int(last) + 1 if first and last else size
    except ValueError:
        return 0, size
    if start >= size or start < 0:
        return None, size
    return start, min(end, size)
