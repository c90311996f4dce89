"""Dress rehearsal of Chapter 1's data step: a stand-in COCO 2017 server tree, built once per arguments.

No machine of the rehearsal reaches cocodataset.org, so this writes a tree laid out like COCO's
own server (``annotations/annotations_trainval2017.zip``, ``train2017/FILE``, ``val2017/FILE``),
which :mod:`.coco_server` serves on loopback; the book reaches it through ``BOOK_COCO_URL`` exactly
as it would reach a user's local mirror. The annotation files follow COCO's schema
(:mod:`.coco_annotations`), the photographs have COCO's usual sizes (:mod:`.coco_pictures`), and a
few files are bad on purpose, as real downloads can be: missing (HTTP 404), truncated, greyscale,
CMYK, and one whose first transfer breaks off (the retry resumes it with a Range request). The
pictures are smooth random shapes over gradients with noise: stand-ins, never findings.
"""

from __future__ import annotations

import io
import json
import shutil
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from ..core.download import md5sum
from ..core.files import atomic_write_bytes, atomic_write_text
from ..data.coco import ANNOTATIONS_ZIP, CAPTION_FILES, caption_path, extract_captions, load_captions, make_plan
from .coco_annotations import CATEGORIES, INFO, LICENSES, SUBSETS, annotate
from .coco_pictures import encode, paint

MANIFEST = "mirror.json"  # what was built and which files are bad; never served
# Kinds of bad file, per subset. "flaky" files are whole, but the server breaks off their first
# transfer halfway (a transient network error, which must be retried and resumed, not replaced).
BAD_KINDS = ("missing", "truncated", "greyscale", "cmyk", "flaky")
FIRST_ID = {"train2017": 9, "val2017": 139}  # COCO's smallest ids; ids are drawn above these
MAX_ID = 581_929  # COCO 2017's largest image id


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
    done = read_manifest(root)
    if done and done.get("params") == params:
        return done
    _check_counts(n_train, n_val, bad_per_kind)
    if done:  # a tree of other arguments: its files must not linger among the new ones
        for top in ("annotations", *SUBSETS):
            shutil.rmtree(root / top, ignore_errors=True)
    rng = np.random.default_rng(seed)
    ids = _draw_ids(rng, {"train2017": n_train, "val2017": n_val})
    used_captions: set[str] = set()
    tables = {subset: annotate(rng, subset, ids[subset], used_captions) for subset in SUBSETS}
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
    with tempfile.TemporaryDirectory() as tmp:
        extract_captions(root / "annotations" / ANNOTATIONS_ZIP, Path(tmp))
        train, val = (load_captions(caption_path(Path(tmp), s)) for s in SUBSETS)
    real, _ = make_plan(profile, train, val)
    return {s: [int(i) for i in real.loc[real["coco_subset"] == s, "coco_id"]] for s in SUBSETS}


def read_manifest(root: Path) -> dict | None:
    """What the tree under ``root`` was built from and which files are bad; None for no tree."""
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


def _write_zip(root: Path, tables: dict) -> str:
    """The four JSON files in ``annotations/`` inside the zip, with fixed dates (same bytes each time)."""
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
        atomic_write_bytes(root / subset / entry["file_name"], encode(picture, kind))
