"""MS-COCO 2017: where its files are, and the seeded sampling of the study's splits.

The paper (section 5.1) samples 10,000 training and 1,900 validation photographs from train2017
and 1,500 test photographs from val2017, and generates as many images (7,000 + 1,900 + 1,500)
from captions of COCO images that are *not* in the real training set. :func:`make_plan` draws
both, seeded, with the sets disjoint by image id and by caption text.
"""

from __future__ import annotations

import hashlib
import json
import re
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd

from .paths import atomic_write_bytes

ANNOTATIONS_URL = "http://images.cocodataset.org/annotations/annotations_trainval2017.zip"
ANNOTATIONS_MD5 = "f4bbac642086de4f52a3fdda2de5fa2c"  # published with the COCO 2017 release
ANNOTATIONS_ZIP = "annotations_trainval2017.zip"
IMAGE_URL = "http://images.cocodataset.org/{subset}/{file_name}"
CAPTION_FILES = {"train2017": "captions_train2017.json", "val2017": "captions_val2017.json"}
# Real train and val come from train2017, real test from val2017; generated likewise.
SUBSET_OF_SPLIT = {"train": "train2017", "val": "train2017", "test": "val2017"}


def caption_path(coco_root: Path, subset: str) -> Path:
    return Path(coco_root) / "annotations" / CAPTION_FILES[subset]


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


def make_plan(profile, train: pd.DataFrame, val: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Seeded real and generated plans: (real rows, generated rows).

    Real images take their first caption for display. Each generated image takes one caption, drawn
    from its COCO image's captions, that is not the caption of any other image of the study.
    """
    rng = np.random.default_rng(profile.seed)
    need = {
        "train2017": profile.real_train + profile.real_val + profile.gen_train + profile.gen_val,
        "val2017": profile.real_test + profile.gen_test,
    }
    pools = {}
    for subset, table in (("train2017", train), ("val2017", val)):
        if len(table) < need[subset]:
            raise ValueError(f"{subset} has {len(table)} captioned images; profile '{profile.name}' "
                             f"needs {need[subset]}")
        pools[subset] = table.iloc[rng.permutation(len(table))].reset_index(drop=True)

    real_rows, gen_take = [], []
    starts = {"train2017": 0, "val2017": 0}
    for split, n in profile.real_counts.items():
        subset = SUBSET_OF_SPLIT[split]
        chunk = pools[subset].iloc[starts[subset]:starts[subset] + n]
        starts[subset] += n
        for row in chunk.itertuples():
            real_rows.append(dict(split=split, coco_id=int(row.id), coco_subset=subset,
                                  file_name=row.file_name, width=int(row.width),
                                  height=int(row.height), caption=row.captions[0]))
    # Captions of the real images are never used for generation.
    used: set[str] = set()
    real_ids = {r["coco_id"] for r in real_rows}
    for table in pools.values():
        for row in table[table["id"].isin(real_ids)].itertuples():
            used.update(normalise(c) for c in row.captions)

    gen_rows = []
    for split, n in profile.gen_counts.items():
        subset = SUBSET_OF_SPLIT[split]
        pool, taken = pools[subset], 0
        while taken < n:
            if starts[subset] >= len(pool):
                raise ValueError(f"{subset} ran out of images with unused captions for the "
                                 f"generated {split} split of profile '{profile.name}'")
            row = pool.iloc[starts[subset]]
            starts[subset] += 1
            for idx in rng.permutation(len(row.captions)):
                caption = row.captions[idx]
                if normalise(caption) not in used:
                    used.add(normalise(caption))
                    gen_rows.append(dict(split=split, key=f"sd_{int(row.id):012d}",
                                         coco_id=int(row.id), coco_subset=subset, caption=caption,
                                         seed=image_seed(profile.seed, row.id)))
                    taken += 1
                    break
    return pd.DataFrame(real_rows), pd.DataFrame(gen_rows)
