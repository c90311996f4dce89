"""Shared fixtures: a private data root per test, and a tiny file server on 127.0.0.1."""

from __future__ import annotations

import io
import json
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest
from PIL import Image


@pytest.fixture(autouse=True)
def _no_build_wide_settings(monkeypatch):
    """A build's $BOOK_SET or $BOOK_COCO_URL (a rehearsal's, say) never leaks into the tests."""
    monkeypatch.delenv("BOOK_SET", raising=False)
    monkeypatch.delenv("BOOK_COCO_URL", raising=False)


@pytest.fixture
def data_root(tmp_path, monkeypatch):
    root = tmp_path / "data"
    monkeypatch.setenv("BOOK_DATA_ROOT", str(root))
    monkeypatch.setenv("BOOK_RESULTS_ROOT", str(tmp_path / "results"))
    monkeypatch.delenv("BOOK_PROFILE", raising=False)
    return root


class FileServer:
    """Serves ``files`` (path -> bytes) with Range support.

    ``drop_after[path] = n``: the next response for ``path`` announces the full length but closes
    after ``n`` bytes (a transfer broken off), once per entry of ``drop_times[path]`` (default 1).
    ``requests`` records (path, Range header) of every request.
    """

    def __init__(self):
        self.files: dict[str, bytes] = {}
        self.drop_after: dict[str, int] = {}
        self.drop_times: dict[str, int] = {}
        self.requests: list[tuple[str, str | None]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                path = self.path.split("?")[0]
                rng = self.headers.get("Range")
                server.requests.append((path, rng))
                if path not in server.files:
                    self.send_error(404)
                    return
                body = server.files[path]
                start = 0
                if rng and rng.startswith("bytes="):
                    start = int(rng[6:].split("-")[0])
                    if start >= len(body):
                        self.send_response(416)
                        self.send_header("Content-Range", f"bytes */{len(body)}")
                        self.end_headers()
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
                else:
                    self.send_response(200)
                rest = body[start:]
                self.send_header("Content-Length", str(len(rest)))
                self.send_header("Accept-Ranges", "bytes")
                self.end_headers()
                if path in server.drop_after and server.drop_times.get(path, 1) > 0:
                    server.drop_times[path] = server.drop_times.get(path, 1) - 1
                    self.wfile.write(rest[:server.drop_after[path]])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.wfile.write(rest)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def file_server():
    server = FileServer()
    yield server
    server.close()


def jpeg(w, h, seed, mode="RGB") -> bytes:
    """A small JPEG of random pixels (``mode``: RGB, L or CMYK, all valid COCO files)."""
    arr = np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).convert(mode).save(buf, format="JPEG", quality=85)
    return buf.getvalue()


def serve_coco(server, subsets=("train2017", "val2017")) -> None:
    """COCO's layout on ``server``: the annotations zip (holding the caption files of ``subsets``,
    and a file the data step does not read) and 40 train2017 and 12 val2017 photographs,
    landscape and portrait."""
    zbuf = io.BytesIO()
    with zipfile.ZipFile(zbuf, "w") as zf:
        for subset, ids in (("train2017", range(1, 41)), ("val2017", range(1001, 1013))):
            images, anns = [], []
            for i in ids:
                w, h = (64, 48) if i % 2 else (48, 64)
                server.files[f"/{subset}/{i:012d}.jpg"] = jpeg(w, h, i)
                images.append(dict(id=i, file_name=f"{i:012d}.jpg", width=w, height=h))
                anns += [dict(id=i * 10 + k, image_id=i, caption=f"Picture {i}, caption {k}.") for k in range(5)]
            if subset in subsets:
                zf.writestr(f"annotations/captions_{subset}.json",
                            json.dumps(dict(images=images, annotations=anns)))
        zf.writestr("annotations/person_keypoints_train2017.json", "{}")
    server.files["/annotations/annotations_trainval2017.zip"] = zbuf.getvalue()


@pytest.fixture
def coco_mirror(data_root, file_server, monkeypatch):
    """A tiny COCO 2017 on 127.0.0.1, reached as a user reaches a mirror: $BOOK_COCO_URL."""
    monkeypatch.setenv("BOOK_COCO_URL", file_server.url)
    serve_coco(file_server)
    return file_server
