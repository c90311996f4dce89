"""Dress rehearsal of Chapter 1's data step: the stand-in COCO's annotations, in COCO's schema.

Captions and object instances as COCO 2017 stores them (polygons, and crowd regions as
uncompressed RLE), for random pictures: five distinct captions per image naming its objects, so
that the data step's plan, its caption checks and Chapter 3's object masks meet what they meet in
COCO. Stand-ins, never findings.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

from ..data.coco import OFFICIAL_URL, image_url

SUBSETS = ("train2017", "val2017")
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
LICENSES = [{"url": "http://creativecommons.org/licenses/by-nc-sa/2.0/", "id": 1,
             "name": "Attribution-NonCommercial-ShareAlike License"},
            {"url": "http://creativecommons.org/licenses/by/2.0/", "id": 4, "name": "Attribution License"}]
INFO = {"description": "Stand-in for COCO 2017 (dress rehearsal; random pictures, not COCO)",
        "url": "http://cocodataset.org", "version": "1.0", "year": 2017,
        "contributor": "COCO Consortium (schema); helpers.rehearsal (content)",
        "date_created": "2017/09/01"}


def annotate(rng: np.random.Generator, subset: str, ids: list[int], used: set[str]) -> dict:
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
