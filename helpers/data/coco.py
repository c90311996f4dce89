"""Chapter 1: where MS-COCO 2017's files are, and the seeded sampling of the study's splits.

The paper (section 5.1) samples 10,000 training and 1,900 validation photographs from train2017
and 1,500 test photographs from val2017, and generates as many images (7,000 + 1,900 + 1,500)
from captions of COCO images that are *not* in the real training set. :func:`make_plan` draws
both, seeded, with the sets disjoint by image id and by caption text, and a seeded reserve of
photographs that stand in, in order, for planned ones the server cannot give (missing or corrupt).

The files come from COCO's own server, or from any server laid out like it (a local mirror, or
the rehearsal's stand-in): the profile's ``coco_url``, else ``$BOOK_COCO_URL`` (:func:`base_url`).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd

from ..core.download import md5sum
from ..core.files import atomic_write_bytes
from ..core.paths import coco_dir

OFFICIAL_URL = "http://images.cocodataset.org"
URL_ENV = "BOOK_COCO_URL"
ANNOTATIONS_MD5 = "f4bbac642086de4f52a3fdda2de5fa2c"  # published with the COCO 2017 release
ANNOTATIONS_ZIP = "annotations_trainval2017.zip"
CAPTION_FILES = {"train2017": "captions_train2017.json", "val2017": "captions_val2017.json"}
# Real train and val come from train2017, real test from val2017; generated likewise.
SUBSET_OF_SPLIT = {"train": "train2017", "val": "train2017", "test": "val2017"}


def base_url(profile) -> str:
    """Where COCO's files are: the profile's ``coco_url``, else ``$BOOK_COCO_URL``, else COCO's own
    server. Any server with COCO's layout works (``annotations/annotations_trainval2017.zip``,
    ``train2017/FILE``, ``val2017/FILE``), which is how a local mirror is used."""
    return (profile.coco_url or os.environ.get(URL_ENV) or OFFICIAL_URL).rstrip("/")


def annotations_url(base: str) -> str:
    return f"{base}/annotations/{ANNOTATIONS_ZIP}"


def image_url(base: str, subset: str, file_name: str) -> str:
    return f"{base}/{subset}/{file_name}"


def check_annotations_zip(path: Path) -> None:
    """Raise ValueError unless ``path`` is a zip holding both caption files (a mirror's zip)."""
    try:
        with zipfile.ZipFile(path) as zf:
            names = {Path(n).name for n in zf.namelist()}
    except (zipfile.BadZipFile, OSError) as exc:
        raise ValueError(f"not a readable zip file ({exc})") from None
    missing = [n for n in CAPTION_FILES.values() if n not in names]
    if missing:
        raise ValueError(f"the zip lacks {', '.join(missing)}")


def mirror_zip_check(url: str):
    """The check of a mirror's annotations zip: COCO's md5, or else (a repacked or stand-in zip,
    said in one line) the caption files that the data step reads. COCO's own server keeps the
    md5 as a hard check instead (see the data step)."""
    def verify(path: Path) -> None:
        digest = md5sum(path)
        if digest != ANNOTATIONS_MD5:
            print(f"note: {url} is not COCO's official release (md5 {digest}, COCO's is "
                  f"{ANNOTATIONS_MD5}); checking that it holds the caption files instead")
            check_annotations_zip(path)
    return verify


def caption_path(coco_root: Path, subset: str) -> Path:
    return Path(coco_root) / "annotations" / CAPTION_FILES[subset]


def instances_path(profile) -> Path:
    """COCO's instance annotations (object outlines) of the test photographs (val2017), as the data
    step extracts them: Chapter 3's object holes and Chapter 6's Grad-CAM check read this one file."""
    return coco_dir(profile) / "annotations" / f"instances_{SUBSET_OF_SPLIT['test']}.json"


def extract_captions(zip_path: Path, coco_root: Path) -> None:
    """Take the two caption files (and the instance masks, for Chapter 3) out of the zip."""
    with zipfile.ZipFile(zip_path) as zf:
        for name in zf.namelist():
            base = Path(name).name
            if base in CAPTION_FILES.values() or base.startswith("instances_"):
                target = Path(coco_root) / "annotations" / base
                if not target.exists():
                    atomic_write_bytes(target, zf.read(name))


def load_captions(path: Path) -> pd.DataFrame:
    """One row per image: id, file_name, width, height and the list of its captions."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        images = pd.DataFrame(data["images"])[["id", "file_name", "width", "height"]]
        anns = pd.DataFrame(data["annotations"])[["image_id", "caption"]]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"{path} is not a COCO captions file ({exc}); delete it and run "
                         f"`python -m helpers data` again to fetch it anew") from None
    anns["caption"] = anns["caption"].astype(str).str.strip()
    caps = anns.groupby("image_id")["caption"].apply(list)
    images = images[images["id"].isin(caps.index)].copy()
    images["captions"] = images["id"].map(caps)
    return images.sort_values("id").reset_index(drop=True)


def normalise(caption: str) -> str:
    """The text used to call two captions the same: case, spaces and end punctuation ignored."""
    return re.sub(r"\s+", " ", caption.lower()).strip().rstrip(".!").strip()


def image_seed(base_seed: int, coco_id: int) -> int:
    """One seed per generated image, independent of batching and of the number of GPUs."""
    digest = hashlib.sha256(f"{base_seed}:{int(coco_id)}".encode()).hexdigest()
    return int(digest[:15], 16)


def reserve_size(n_real: int) -> int:
    """Reserve photographs per subset: enough for a few percent of missing or corrupt files."""
    return max(5, math.ceil(0.02 * n_real))


REAL_COLUMNS = ["split", "coco_id", "coco_subset", "file_name", "width", "height", "caption"]


def _real_row(split: str, subset: str, row) -> dict:
    return dict(split=split, coco_id=int(row.id), coco_subset=subset, file_name=row.file_name,
                width=int(row.width), height=int(row.height), caption=row.captions[0])


def make_plan(profile, train: pd.DataFrame, val: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Seeded real and generated plans: (real rows, generated rows); see :func:`plan_with_reserve`."""
    real, gen, _ = plan_with_reserve(profile, train, val)
    return real, gen


def plan_with_reserve(profile, train: pd.DataFrame,
                      val: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Seeded real, generated and reserve plans: (real rows, generated rows, reserve rows).

    Real images take their first caption for display. Each generated image takes one caption, drawn
    from its COCO image's captions, that is not the caption of any other image of the study.
    The reserve (split ``reserve``, :func:`reserve_size` per subset) is drawn after both, from the
    same shuffled pools, so it does not change them: its images are neither real nor caption
    sources, and none of its captions is a generated one, so that a reserve photograph promoted to
    the real set keeps the rule "no real image's caption is generated".
    """
    rng = np.random.default_rng(profile.seed)
    pools = _shuffled_pools(profile, rng, {"train2017": train, "val2017": val})
    starts = {"train2017": 0, "val2017": 0}  # the next unused image of each pool
    real_rows = _draw_real(profile, pools, starts)
    used = _captions_of(pools, {r["coco_id"] for r in real_rows})  # never used for generation
    gen_rows = _draw_generated(profile, pools, starts, used, rng)
    generated = {normalise(r["caption"]) for r in gen_rows}
    reserve = [row for subset, n in (("train2017", profile.real_train + profile.real_val),
                                     ("val2017", profile.real_test))
               for row in _draw_reserve(pools[subset].iloc[starts[subset]:], subset, n, generated)]
    return pd.DataFrame(real_rows), pd.DataFrame(gen_rows), pd.DataFrame(reserve, columns=REAL_COLUMNS)


def _shuffled_pools(profile, rng: np.random.Generator, tables: dict[str, pd.DataFrame]) -> dict:
    """Each subset's captioned images in a seeded order, refused when the profile needs more."""
    need = {
        "train2017": profile.real_train + profile.real_val + profile.gen_train + profile.gen_val,
        "val2017": profile.real_test + profile.gen_test,
    }
    pools = {}
    for subset, table in tables.items():
        if len(table) < need[subset]:
            raise ValueError(f"{subset} has {len(table)} captioned images; profile '{profile.name}' "
                             f"needs {need[subset]}")
        pools[subset] = table.iloc[rng.permutation(len(table))].reset_index(drop=True)
    return pools


def _draw_real(profile, pools: dict, starts: dict) -> list[dict]:
    """The next images of each pool as the real splits (``starts`` moves past them)."""
    rows = []
    for split, n in profile.real_counts.items():
        subset = SUBSET_OF_SPLIT[split]
        chunk = pools[subset].iloc[starts[subset]:starts[subset] + n]
        starts[subset] += n
        rows += [_real_row(split, subset, row) for row in chunk.itertuples()]
    return rows


def _captions_of(pools: dict, ids: set[int]) -> set[str]:
    """Every caption (normalised) of the images ``ids``."""
    used: set[str] = set()
    for table in pools.values():
        for row in table[table["id"].isin(ids)].itertuples():
            used.update(normalise(c) for c in row.captions)
    return used


def _draw_generated(profile, pools: dict, starts: dict, used: set[str],
                    rng: np.random.Generator) -> list[dict]:
    """The generated splits: from each next image of the pool, one random caption not used yet
    (an image with none is passed over); ``used`` and ``starts`` move on."""
    rows = []
    for split, n in profile.gen_counts.items():
        subset = SUBSET_OF_SPLIT[split]
        pool, taken = pools[subset], 0
        while taken < n:
            if starts[subset] >= len(pool):
                raise ValueError(f"{subset} ran out of images with unused captions for the "
                                 f"generated {split} split of profile '{profile.name}'")
            row = pool.iloc[starts[subset]]
            starts[subset] += 1
            caption = _unused_caption(row.captions, used, rng)
            if caption is not None:
                used.add(normalise(caption))
                rows.append(dict(split=split, key=f"sd_{int(row.id):012d}", coco_id=int(row.id),
                                 coco_subset=subset, caption=caption,
                                 seed=image_seed(profile.seed, row.id)))
                taken += 1
    return rows


def _unused_caption(captions: list[str], used: set[str], rng: np.random.Generator) -> str | None:
    """The first caption, in a seeded random order, whose text is not in ``used``."""
    for idx in rng.permutation(len(captions)):
        if normalise(captions[idx]) not in used:
            return captions[idx]
    return None


def _draw_reserve(rest: pd.DataFrame, subset: str, n_real: int, generated: set[str]) -> list[dict]:
    """The first images of the rest of a pool whose captions are not generated ones."""
    rows = []
    for row in rest.itertuples():
        if len(rows) == reserve_size(n_real):
            break
        if not any(normalise(c) in generated for c in row.captions):
            rows.append(_real_row("reserve", subset, row))
    return rows
