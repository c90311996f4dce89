"""Dress rehearsal of Chapter 1's data step: a stand-in COCO 2017 server on 127.0.0.1.

No machine of the rehearsal reaches cocodataset.org, so this writes a tree laid out like COCO's
own server (``annotations/annotations_trainval2017.zip``, ``train2017/FILE``, ``val2017/FILE``)
and serves it on loopback; the book reaches it through ``BOOK_COCO_URL`` exactly as it would reach
a user's local mirror. The annotation files follow COCO's schema (captions, and instances with
polygons and crowd RLE), the photographs have COCO's usual sizes, and a few files are bad on
purpose, as real downloads can be: missing (HTTP 404), truncated, greyscale, CMYK, and one whose
first transfer breaks off (the retry resumes it with a Range request). The pictures are smooth
random shapes over gradients with noise: stand-ins, never findings.
"""

from __future__ import annotations

import io
import json
import shutil
import tempfile
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

import numpy as np
from PIL import Image, ImageDraw

from ..coco import ANNOTATIONS_ZIP, CAPTION_FILES, OFFICIAL_URL, image_url
from ..paths import UnsafePathError, atomic_write_bytes, atomic_write_text, inside

MANIFEST = "mirror.json"  # what was built and which files are bad; never served
SUBSETS = ("train2017", "val2017")
# Kinds of bad file, per subset. "flaky" files are whole, but the server breaks off their first
# transfer halfway (a transient network error, which must be retried and resumed, not replaced).
BAD_KINDS = ("missing", "truncated", "greyscale", "cmyk", "flaky")
# (width, height) of COCO photographs, the common ones first (Flickr's 640 px long side).
SIZES = ((640, 480), (480, 640), (640, 427), (500, 375), (427, 640), (640, 428), (375, 500),
         (612, 612), (640, 424), (640, 360), (480, 640), (640, 480))
# A subset of COCO's 80 categories, with their real ids and supercategories.
CATEGORIES = (
    (1, "person", "person"), (2, "bicycle", "vehicle"), (3, "car", "vehicle"), (6, "bus", "vehicle"),
    (9, "boat", "vehicle"), (15, "bench", "outdoor"), (16, "bird", "animal"), (17, "cat", "animal"),
    (18, "dog", "animal"), (19, "horse", "animal"), (21, "cow", "animal"), (22, "elephant", "animal"),
    (25, "giraffe", "animal"), (28, "umbrella", "accessory"), (44, "bottle", "kitchen"),
    (47, "cup", "kitchen"), (62, "chair", "furniture"), (64, "potted plant", "furniture"),
    (67, "dining table", "furniture"), (73, "laptop", "electronic"),
)
ADJECTIVES = ("small", "large", "white", "black", "brown", "red", "tall", "young", "wet", "lone",
              "striped", "spotted", "shiny", "dusty", "pale", "dark")
ACTIONS = ("standing", "sitting", "resting", "waiting", "lying", "seen from above", "seen from the side",
           "shown up close", "half in shadow", "in bright sunlight", "next to a fence", "beside a wall",
           "near a window", "under a tree", "by the road", "on display")
PLACES = ("in a park", "on a city street", "in a kitchen", "on a beach", "in a field", "at a market",
          "in a living room", "near a lake", "in the snow", "on a farm", "at night", "in the rain",
          "in a garden", "on a sidewalk", "in an office", "at a train station", "on a hill",
          "in a parking lot", "at the zoo", "in a backyard")
TEMPLATES = ("A {adj} {noun} {act} {place}.", "There is a {adj} {noun} {act} {place}.",
             "A photo of a {adj} {noun} {act} {place}.", "An image of a {adj} {noun} {act} {place}.",
             "Some {adj} {noun} {act} {place}.")
CAPTIONS_PER_IMAGE = 5
CROWD_EVERY = 8  # one image in eight also has a crowd region (iscrowd=1, RLE), as COCO has
FIRST_ID = {"train2017": 9, "val2017": 139}  # COCO's smallest ids; ids are drawn above these
MAX_ID = 581_929  # COCO 2017's largest image id
LICENSES = [{"url": "http://creativecommons.org/licenses/by-nc-sa/2.0/", "id": 1,
             "name": "Attribution-NonCommercial-ShareAlike License"},
            {"url": "http://creativecommons.org/licenses/by/2.0/", "id": 4, "name": "Attribution License"}]
INFO = {"description": "Stand-in for COCO 2017 (dress rehearsal; random pictures, not COCO)",
        "url": "http://cocodataset.org", "version": "1.0", "year": 2017,
        "contributor": "COCO Consortium (schema); helpers.rehearsal (content)",
        "date_created": "2017/09/01"}


def build_coco_mirror(root: Path, n_train: int, n_val: int, seed: int = 0, bad_per_kind: int = 2,
                      profile=None) -> dict:
    """Write the server tree under ``root``; return what was built and which ids are bad.

    The result (also written to ``root/mirror.json``) holds the ``zip``'s path and ``md5`` (the
    stand-in's, not COCO's published one), ``ids`` per subset and ``bad[subset][kind]`` ids. The
    same arguments give the same bytes; an existing tree of the same arguments is kept.
    ``profile``: put the bad files among the photographs that this profile's plan samples (first
    one of each kind, then the rest), so that its data step meets every kind.
    """
    root = Path(root)
    params = dict(n_train=n_train, n_val=n_val, seed=seed, bad_per_kind=bad_per_kind,
                  plan=None if profile is None else _planned_key(profile))
    done = _read_manifest(root)
    if done and done.get("params") == params:
        return done
    _check_counts(n_train, n_val, bad_per_kind)
    if done:  # a tree of other arguments: its files must not linger among the new ones
        for top in ("annotations", *SUBSETS):
            shutil.rmtree(root / top, ignore_errors=True)
    rng = np.random.default_rng(seed)
    ids = _draw_ids(rng, {"train2017": n_train, "val2017": n_val})
    used_captions: set[str] = set()
    tables = {subset: _annotate(rng, subset, ids[subset], used_captions) for subset in SUBSETS}
    md5 = _write_zip(root, tables)
    planned = _planned_ids(root, profile) if profile is not None else {s: [] for s in SUBSETS}
    bad = {subset: _pick_bad(rng, ids[subset], planned[subset], bad_per_kind) for subset in SUBSETS}
    for subset in SUBSETS:
        _write_images(root, subset, tables[subset], bad[subset], seed)
    result = dict(params=params, zip=f"annotations/{ANNOTATIONS_ZIP}", md5=md5, ids=ids, bad=bad)
    atomic_write_text(root / MANIFEST, json.dumps(result, indent=1))
    return result


def _check_counts(n_train: int, n_val: int, bad_per_kind: int) -> None:
    if min(n_train, n_val) < len(BAD_KINDS) * bad_per_kind + 1:
        raise ValueError(f"a mirror needs more than {len(BAD_KINDS) * bad_per_kind} images per subset "
                         f"(bad_per_kind={bad_per_kind}); got n_train={n_train}, n_val={n_val}")


def _planned_key(profile) -> dict:
    """What a profile's plan depends on (besides the captions): its seed and its counts."""
    return dict(seed=profile.seed, **profile.real_counts, **{f"gen_{k}": v for k, v in profile.gen_counts.items()})


def _planned_ids(root: Path, profile) -> dict[str, list[int]]:
    """The photographs the profile's plan samples, read by the data step's own code from the zip."""
    from ..coco import caption_path, extract_captions, load_captions, make_plan

    with tempfile.TemporaryDirectory() as tmp:
        extract_captions(root / "annotations" / ANNOTATIONS_ZIP, Path(tmp))
        train, val = (load_captions(caption_path(Path(tmp), s)) for s in SUBSETS)
    real, _ = make_plan(profile, train, val)
    return {s: [int(i) for i in real.loc[real["coco_subset"] == s, "coco_id"]] for s in SUBSETS}


def _read_manifest(root: Path) -> dict | None:
    try:
        return json.loads((root / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _draw_ids(rng: np.random.Generator, counts: dict[str, int]) -> dict[str, list[int]]:
    """Distinct COCO-like image ids, disjoint between the subsets (as in COCO)."""
    drawn = rng.choice(np.arange(FIRST_ID["train2017"], MAX_ID + 1), size=sum(counts.values()), replace=False)
    out, start = {}, 0
    for subset, n in counts.items():
        out[subset] = sorted(int(i) for i in drawn[start:start + n])
        start += n
    return out


def _pick_bad(rng: np.random.Generator, ids: list[int], planned: list[int], per_kind: int) -> dict[str, list[int]]:
    """``per_kind`` ids of each kind, planned ids first; kinds take turns, so that each kind gets
    one of the planned ids before any kind gets a second."""
    others = [i for i in ids if i not in set(planned)]
    order = [int(i) for i in rng.permutation(planned)] + [int(i) for i in rng.permutation(others)]
    chosen = order[:len(BAD_KINDS) * per_kind]
    return {kind: sorted(chosen[k::len(BAD_KINDS)]) for k, kind in enumerate(BAD_KINDS)}


def _annotate(rng: np.random.Generator, subset: str, ids: list[int], used: set[str]) -> dict:
    """Images, captions and object instances of one subset, in COCO's schema."""
    images, captions, objects = [], [], []
    for k, image_id in enumerate(ids):
        width, height = SIZES[int(rng.integers(len(SIZES)))]
        images.append(_image_entry(subset, image_id, width, height, rng))
        image_objects = _objects(rng, image_id, width, height, crowd=k % CROWD_EVERY == 1)
        nouns = [_category(o["category_id"])[1] for o in image_objects if not o["iscrowd"]]
        for text in _captions(rng, nouns, used):
            captions.append(dict(image_id=image_id, id=0, caption=text))
        objects += image_objects
    _number(captions, start=37 if subset == "train2017" else 700_000)
    _number(objects, start=1 if subset == "train2017" else 900_000)
    return dict(images=images, captions=captions, instances=objects)


def _number(annotations: list[dict], start: int) -> None:
    for k, ann in enumerate(annotations):
        ann["id"] = start + k


def _image_entry(subset: str, image_id: int, width: int, height: int, rng) -> dict:
    file_name = f"{image_id:012d}.jpg"
    day, hour = int(rng.integers(1, 29)), int(rng.integers(0, 24))
    return dict(license=int(rng.choice([1, 4])), file_name=file_name,
                coco_url=image_url(OFFICIAL_URL, subset, file_name), height=height, width=width,
                date_captured=f"2013-11-{day:02d} {hour:02d}:{int(rng.integers(60)):02d}:{int(rng.integers(60)):02d}",
                flickr_url=f"http://farm{int(rng.integers(1, 10))}.staticflickr.com/{image_id}.jpg", id=image_id)


def _category(category_id: int) -> tuple[int, str, str]:
    return next(c for c in CATEGORIES if c[0] == category_id)


def _captions(rng: np.random.Generator, nouns: list[str], used: set[str]) -> list[str]:
    """``CAPTIONS_PER_IMAGE`` captions naming the image's objects, none used anywhere before."""
    out = []
    for _ in range(100_000):
        if len(out) == CAPTIONS_PER_IMAGE:
            return out
        text = str(rng.choice(TEMPLATES)).format(
            adj=rng.choice(ADJECTIVES), noun=rng.choice(nouns), act=rng.choice(ACTIONS), place=rng.choice(PLACES))
        key = text.lower().rstrip(".")
        if key not in used:
            used.add(key)
            out.append(text)
    raise ValueError("the caption vocabulary is used up: build a smaller mirror")


def _objects(rng: np.random.Generator, image_id: int, width: int, height: int, crowd: bool) -> list[dict]:
    """1 to 4 polygon objects of 1 to 25 % of the picture, and a crowd region where asked."""
    objects = [_polygon_object(rng, image_id, width, height) for _ in range(int(rng.integers(1, 5)))]
    if crowd:
        objects.append(_crowd_object(rng, image_id, width, height))
    return objects


def _polygon_object(rng: np.random.Generator, image_id: int, width: int, height: int) -> dict:
    """A star-shaped blob: vertices at sorted angles around a centre, radii jittered."""
    share = rng.uniform(0.01, 0.25)
    radius = np.sqrt(share * width * height / np.pi)
    cx, cy = rng.uniform(radius * 0.6, width - radius * 0.6), rng.uniform(radius * 0.6, height - radius * 0.6)
    angles = np.sort(rng.uniform(0, 2 * np.pi, int(rng.integers(8, 15))))
    radii = radius * rng.uniform(0.7, 1.2, len(angles))
    xs = np.clip(cx + radii * np.cos(angles), 0, width - 1).round(2)
    ys = np.clip(cy + radii * np.sin(angles), 0, height - 1).round(2)
    area = 0.5 * abs(float(np.dot(xs, np.roll(ys, 1)) - np.dot(ys, np.roll(xs, 1))))
    polygon = [float(v) for pair in zip(xs, ys) for v in pair]
    bbox = [float(xs.min()), float(ys.min()), float(xs.max() - xs.min()), float(ys.max() - ys.min())]
    category = CATEGORIES[int(rng.integers(len(CATEGORIES)))][0]
    return dict(segmentation=[polygon], area=round(area, 2), iscrowd=0, image_id=image_id,
                bbox=[round(v, 2) for v in bbox], category_id=category, id=0)


def _crowd_object(rng: np.random.Generator, image_id: int, width: int, height: int) -> dict:
    """A crowd of people as COCO stores it: an uncompressed RLE mask of the whole region."""
    w, h = int(width * rng.uniform(0.2, 0.5)), int(height * rng.uniform(0.15, 0.35))
    x, y = int(rng.integers(0, width - w)), int(rng.integers(0, height - h))
    canvas = Image.new("L", (width, height), 0)
    ImageDraw.Draw(canvas).ellipse([x, y, x + w, y + h], fill=1)
    mask = np.asarray(canvas, dtype=np.uint8)
    ys, xs = np.nonzero(mask)
    bbox = [float(xs.min()), float(ys.min()), float(xs.max() - xs.min() + 1), float(ys.max() - ys.min() + 1)]
    return dict(segmentation=dict(counts=rle_counts(mask), size=[height, width]), area=int(mask.sum()),
                iscrowd=1, image_id=image_id, bbox=bbox, category_id=1, id=0)


def rle_counts(mask: np.ndarray) -> list[int]:
    """COCO's uncompressed RLE: run lengths over the column-major pixels, starting with zeros."""
    flat = np.asarray(mask, dtype=np.uint8).flatten(order="F")
    changes = np.flatnonzero(np.diff(flat)) + 1
    bounds = np.concatenate([[0], changes, [flat.size]])
    runs = np.diff(bounds).tolist()
    return runs if flat[0] == 0 else [0] + runs


def _write_zip(root: Path, tables: dict) -> str:
    """The four JSON files in ``annotations/`` inside the zip, with fixed dates (same bytes each time)."""
    from ..download import md5sum

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for subset in SUBSETS:
            table, categories = tables[subset], [dict(supercategory=s, id=i, name=n) for i, n, s in CATEGORIES]
            files = {CAPTION_FILES[subset]: dict(annotations=table["captions"]),
                     f"instances_{subset}.json": dict(annotations=table["instances"], categories=categories)}
            for name, body in files.items():
                data = dict(info=INFO, licenses=LICENSES, images=table["images"]) | body
                info = zipfile.ZipInfo(f"annotations/{name}", date_time=(2017, 9, 1, 0, 0, 0))
                zf.writestr(info, json.dumps(data), compress_type=zipfile.ZIP_DEFLATED)
    path = root / "annotations" / ANNOTATIONS_ZIP
    atomic_write_bytes(path, buf.getvalue())
    return md5sum(path)


def _write_images(root: Path, subset: str, table: dict, bad: dict[str, list[int]], seed: int) -> None:
    """Each image's JPEG (its bad variant where it is one); missing ones are not written."""
    kind_of = {i: kind for kind, ids in bad.items() for i in ids}
    by_image: dict[int, list[dict]] = {}
    for obj in table["instances"]:
        by_image.setdefault(obj["image_id"], []).append(obj)
    for entry in table["images"]:
        kind = kind_of.get(entry["id"])
        if kind == "missing":
            continue
        picture = paint(entry["width"], entry["height"], by_image.get(entry["id"], []), seed * 1_000_003 + entry["id"])
        atomic_write_bytes(root / subset / entry["file_name"], _encode(picture, kind))


def _encode(picture: Image.Image, kind: str | None) -> bytes:
    buf = io.BytesIO()
    if kind == "greyscale":
        picture = picture.convert("L")
    elif kind == "cmyk":
        picture = picture.convert("CMYK")
    picture.save(buf, format="JPEG", quality=90)
    data = buf.getvalue()
    return data[:int(len(data) * 0.6)] if kind == "truncated" else data


def paint(width: int, height: int, objects: list[dict], seed: int) -> Image.Image:
    """A picture that is not flat: a two-colour gradient, a smooth random field, the objects'
    polygons in their own colours, and sensor-like noise; different for every seed."""
    rng = np.random.default_rng(seed)
    t = _gradient(rng, width, height)[..., None]
    low, high = rng.uniform(0, 255, 3), rng.uniform(0, 255, 3)
    field = np.asarray(Image.fromarray(rng.uniform(0, 255, (4, 5, 3)).astype(np.uint8)).resize(
        (width, height), Image.Resampling.BICUBIC), dtype=np.float32)
    base = low.astype(np.float32) + t * (high - low).astype(np.float32)
    picture = Image.fromarray(np.clip(0.6 * base + 0.4 * field, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(picture)
    for obj in objects:
        if not obj["iscrowd"]:
            poly = obj["segmentation"][0]
            colour = tuple(int(c) for c in rng.integers(0, 256, 3))
            draw.polygon(list(zip(poly[0::2], poly[1::2])), fill=colour)
    noise = rng.standard_normal((height, width, 3), dtype=np.float32) * 6
    return Image.fromarray(np.clip(np.asarray(picture, dtype=np.float32) + noise, 0, 255).astype(np.uint8))


def _gradient(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    angle = rng.uniform(0, 2 * np.pi)
    xs = np.arange(width, dtype=np.float32)[None, :] / width
    ys = np.arange(height, dtype=np.float32)[:, None] / height
    ramp = np.cos(angle) * xs + np.sin(angle) * ys
    return (ramp - ramp.min()) / max(float(np.ptp(ramp)), 1e-6)


def serve(root: Path) -> tuple[str, callable]:
    """Serve ``root`` on 127.0.0.1 (a free port) from a daemon thread: ``(base_url, stop)``.

    ``base_url`` has no trailing slash: ``base_url + "/train2017/" + file_name``. Only the three
    folders of COCO's server are served; anything else answers 404, as do the missing files.
    """
    manifest = _read_manifest(Path(root)) or {}
    flaky = {f"/{s}/{i:012d}.jpg" for s, kinds in manifest.get("bad", {}).items() for i in kinds.get("flaky", [])}
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(Path(root).resolve(), flaky))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name="coco-mirror", daemon=True)
    thread.start()

    def stop() -> None:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)

    return f"http://127.0.0.1:{server.server_address[1]}", stop


def _handler(root: Path, flaky: set[str]):
    lock, broken = threading.Lock(), set()

    class Handler(BaseHTTPRequestHandler):
        """GET and HEAD of files, with single byte ranges (``bytes=N-`` or ``bytes=N-M``)."""

        def log_message(self, *args):  # quiet: a book build's log is not the place for access lines
            pass

        def do_HEAD(self):
            self._answer(head=True)

        def do_GET(self):
            self._answer(head=False)

        def _answer(self, head: bool) -> None:
            path = unquote(urlsplit(self.path).path)
            body = _file(root, path)
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
            with lock:
                breaks = first and path in flaky and path not in broken
                if breaks:
                    broken.add(path)
            if breaks:  # a transfer broken off halfway: the client must retry and resume
                self.wfile.write(data[:len(data) // 2])
                self.close_connection = True
                return
            self.wfile.write(data)

    return Handler


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
