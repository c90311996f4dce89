"""Chapter 1's tables and figures: counts next to the paper's, the manifest, samples, file formats,
the checks that the sets do not overlap, and what generation costs.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pandas as pd
from PIL import Image, JpegImagePlugin

from ..core import paper
from ..core.paths import data_root, inside
from ..core.profiles import PROFILES, Profile
from ..data import manifest as mf
from ..data.coco import normalise
from ..data.real_data import plan_paths
from ..data.real_data import raw_path as real_raw
from .chapter import load_bench
from .figures import Cell, image_grid


def counts_with_paper(frame: pd.DataFrame, profile: Profile) -> pd.DataFrame:
    """Images per class and split: ours (this profile) next to the paper's (section 5.1)."""
    ours = mf.counts(mf.originals(frame))
    rows = []
    for label in ("real", "generated"):
        for split in mf.SPLITS:
            planned = (profile.real_counts if label == "real" else profile.gen_counts)[split]
            have = int(ours.loc[label, split]) if label in ours.index and split in ours.columns else 0
            rows.append({"class": label, "split": split, f"ours ({profile.name})": have,
                         "planned by the profile": planned, "the paper's": paper.COUNTS[label][split]})
    return pd.DataFrame(rows).set_index(["class", "split"])


def manifest_preview(frame: pd.DataFrame) -> pd.DataFrame:
    """The first real and the first generated row, with the columns a reader needs first."""
    cols = ["path", "label", "split", "source", "caption", "seed", "steps"]
    firsts = frame.groupby("label_name", sort=False).head(1)
    return firsts[cols].set_index("path")


def sample_grid(frame: pd.DataFrame, per_class: int = 4, split: str = "train", seed: int = 0):
    """A figure: ``per_class`` real images on the top row, generated ones below, with captions."""
    frame = mf.originals(frame)
    root = data_root()
    rows = []
    for label in ("real", "generated"):
        chosen = frame[(frame.label_name == label) & (frame.split == split)]
        chosen = chosen.sample(min(per_class, len(chosen)), random_state=seed)
        cells = [Cell(inside(root, item.path), f"{label}\n" + "\n".join(textwrap.wrap(str(item.caption), 30)[:3]))
                 for item in chosen.itertuples()]
        rows.append(cells + [Cell(None)] * (per_class - len(cells)))
    return image_grid(rows, note=f"no images in the {split} split yet", size=(2.6, 3.2))


def file_facts(path: Path) -> dict:
    """Format, size, mode, JPEG quantisation and chroma subsampling of one image file."""
    with Image.open(path) as img:
        facts = {"file": Path(path).name, "format": img.format, "size": f"{img.size[0]}x{img.size[1]}",
                 "mode": img.mode}
        if img.format == "JPEG":
            q = img.quantization
            facts["luma table sum"] = int(sum(q[0])) if q else None
            facts["subsampling"] = {0: "4:4:4", 1: "4:2:2", 2: "4:2:0"}.get(
                JpegImagePlugin.get_sampling(img), "other")
        else:
            facts["luma table sum"], facts["subsampling"] = None, "none (lossless)"
    return facts


def format_comparison(frame: pd.DataFrame, profile: Profile) -> pd.DataFrame:
    """The files as they came (COCO's JPEG, the model's PNG) and as the study stores them."""
    from ..data.generate import raw_path as generated_raw  # torch

    frame = mf.originals(frame)
    real = frame[frame.label_name == "real"].iloc[0]
    gen = frame[frame.label_name == "generated"].iloc[0]
    plan = pd.read_csv(plan_paths(profile)[0], keep_default_na=False).set_index("coco_id")
    original_real = real_raw(profile, plan.loc[int(real.coco_id)])
    key = Path(gen.path).stem
    rows = [
        {"stage": "as it came", "class": "real", **file_facts(original_real)},
        {"stage": "as it came", "class": "generated", **file_facts(generated_raw(profile, gen.split, key))},
        {"stage": "as stored", "class": "real", **file_facts(inside(data_root(), real.path))},
        {"stage": "as stored", "class": "generated", **file_facts(inside(data_root(), gen.path))},
    ]
    return pd.DataFrame(rows).set_index(["stage", "class"])


def resize_factors(frame: pd.DataFrame, profile: Profile) -> pd.DataFrame:
    """How much each image was shrunk (or enlarged) to reach the common side, by class."""
    frame = mf.originals(frame)
    shorter = frame[["orig_width", "orig_height"]].astype(float).min(axis=1)
    factors = pd.DataFrame({"class": frame["label_name"], "scale": profile.image_size / shorter})
    return factors.groupby("class")["scale"].describe()[["count", "min", "50%", "max"]]


def workload() -> pd.DataFrame:
    """What each profile asks for: photographs to fetch and images to generate (from the profiles)."""
    rows = []
    for p in PROFILES.values():
        rows.append({"profile": p.name, "photographs to fetch": sum(p.real_counts.values()),
                     "images to generate": sum(p.gen_counts.values()),
                     "generator": p.sd_model, "side (px)": p.sd_resolution, "steps": p.sd_steps})
    return pd.DataFrame(rows).set_index("profile")


def split_checks(frame: pd.DataFrame) -> pd.DataFrame:
    """Checks that the study's sets do not overlap: by COCO image and by caption."""
    frame = mf.originals(frame)
    real, gen = frame[frame.label_name == "real"], frame[frame.label_name == "generated"]
    gen_caps = gen["caption"].map(normalise)
    checks = {
        "no COCO image is both a real sample and a caption source":
            not set(real.coco_id.dropna()) & set(gen.coco_id.dropna()),
        "no COCO image is in two splits": not frame.groupby("coco_id")["split"].nunique().gt(1).any(),
        "no caption is generated twice": gen_caps.is_unique,
        "no generated caption is the displayed caption of a real sample":
            not set(gen_caps) & set(real["caption"].map(normalise)),
        "every generated image has its own seed": gen["seed"].is_unique,
    }
    return pd.DataFrame({"holds": pd.Series(checks)})


def generation_estimate(profile: Profile) -> pd.DataFrame | None:
    """Time to generate this profile's images at the rate measured by ``bench generate``."""
    bench = load_bench(profile, "generate")
    if bench is None:
        return None
    n = sum(profile.gen_counts.values())
    return pd.DataFrame([{"images": n, "measured images/s": bench["images_per_s"],
                          "device": bench["device"],
                          "estimated minutes on one such device": round(n / bench["images_per_s"] / 60, 1)}])
