"""Chapter 2: the ``augment`` step -- Algorithm 1 over a profile's training images, and its control.

``python -m helpers augment --profile P [--both-classes]`` makes ``augment_count`` augmented
generated training images (:mod:`helpers.augment.algorithm1`). The operations work on the model's
lossless output and the result is then brought to the common size and format like every other
image, so augmented images are compressed once, as the others.

``--both-classes`` also augments as many real training images the same way (the control of
Chapter 4: with both classes augmented, "augmented" no longer means "generated").
Every image has its own seed: a rerun makes the same files, and an interrupted run resumes.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import pandas as pd
from tqdm import tqdm

from ..core.files import atomic_write_bytes, sweep_stale_tmp
from ..core.paths import data_root, inside, profile_dir, relative_to_root
from ..core.stamps import check_or_write
from ..data import manifest as mf
from ..data.images import encode, load_rgb, preprocess, suffix
from ..data.real_data import plan_paths
from ..data.real_data import raw_path as real_raw
from . import algorithm1
from .algorithm1 import AugmentError

PARTS = {"generated": "augmented", "real": "augmented_real"}  # manifest parts
SOURCE = dict(zip(("generated", "real"), mf.AUGMENTED_SOURCES))  # the manifest's `source` column


def sources(profile, frame: pd.DataFrame, label_name: str) -> pd.DataFrame:
    """Training images of one class that augmentation may start from, with their lossless originals."""
    from ..data.generate import raw_path as generated_raw  # lazily: generate imports torch

    pool = mf.originals(frame)
    pool = pool[(pool.label_name == label_name) & (pool.split == "train")].copy()
    if label_name == "generated":
        pool["original"] = [generated_raw(profile, "train", Path(p).stem) for p in pool.path]
    else:
        plan = pd.read_csv(plan_paths(profile)[0], keep_default_na=False).set_index("coco_id")
        pool["original"] = [real_raw(profile, plan.loc[int(i)]) for i in pool.coco_id]
    return pool.sort_values("path").reset_index(drop=True)


def output_path(profile, label_name: str, index: int) -> Path:
    return profile_dir(profile.name) / "images" / label_name / "train" / f"aug_{index:05d}{suffix(profile)}"


def settings(profile) -> dict:
    """What the augmented images depend on; a rerun with other settings is refused."""
    return dict(augment_count=profile.augment_count, seed=profile.seed, image_size=profile.image_size,
                store_format=profile.store_format, jpeg_quality=profile.jpeg_quality,
                jpeg_subsampling=profile.jpeg_subsampling,
                ranges={k: list(v) if isinstance(v, tuple) else v for k, v in asdict(profile.augment).items()})


def make_image(profile, label_name: str, item: dict) -> None:
    """Augment one planned image from its lossless original (the stored image when that is gone)
    and write it in the common format."""
    original = item["source"]["original"]
    img = load_rgb(original, min_side=1) if Path(original).exists() else \
        load_rgb(inside(data_root(), item["source"]["path"]), min_side=1)
    out = algorithm1.apply(img, item["params"], item["seed"])
    atomic_write_bytes(output_path(profile, label_name, item["index"]),
                       encode(preprocess(out, profile.image_size), profile))


def manifest_row(profile, label_name: str, item: dict) -> dict:
    """The manifest row of one augmented image: its source's caption and origin, its techniques."""
    src = item["source"]
    return dict(
        path=relative_to_root(data_root(), output_path(profile, label_name, item["index"])),
        label=mf.LABELS[label_name], label_name=label_name, split="train", source=SOURCE[label_name],
        caption=src["caption"], coco_id=src["coco_id"], seed=item["seed"],
        model_id=src.get("model_id", ""), scheduler=src.get("scheduler", ""),
        steps=src.get("steps", ""), guidance=src.get("guidance", ""),
        orig_width=src["orig_width"], orig_height=src["orig_height"],
        aug_source=src["path"], aug_ops="+".join(item["params"]["ops"]),
        aug_params=json.dumps({k: round(v, 6) for k, v in item["params"].items() if k != "ops"}))


def run_class(profile, frame: pd.DataFrame, label_name: str) -> pd.DataFrame:
    """Make the planned augmented images of one class that are not on disk yet; its manifest part."""
    items = algorithm1.plan(profile, sources(profile, frame, label_name), label_name)
    check_or_write(profile_dir(profile.name) / "images" / label_name / "train" / "augment_settings.json",
                   settings(profile), f"augmented {label_name} images")
    todo = [it for it in items if not output_path(profile, label_name, it["index"]).exists()]
    n_sources = len(set(it["source"]["path"] for it in items))
    print(f"augment {label_name}: {profile.augment_count} images from {n_sources} "
          f"training images, {profile.augment_count - len(todo)} already done")
    for it in tqdm(todo, desc=f"augment {label_name}", unit="img", disable=not todo):
        make_image(profile, label_name, it)
    out = pd.DataFrame([manifest_row(profile, label_name, it) for it in items])
    mf.write_part(profile.name, PARTS[label_name], out)
    return out


def run(profile, both_classes: bool = False) -> pd.DataFrame:
    """Augment the generated training images (and, with ``both_classes``, as many real ones)."""
    if profile.augment_count < 1:
        raise AugmentError(f"profile '{profile.name}' asks for no augmented images (augment_count=0)")
    sweep_stale_tmp(profile_dir(profile.name) / "images")  # temporary files of killed writers
    frame = mf.load(profile.name, check_files=False)  # its own outputs may have been deleted: remade
    parts = [run_class(profile, frame, "generated")]
    if both_classes:
        parts.append(run_class(profile, frame, "real"))
    out = pd.concat(parts, ignore_index=True)
    print(f"{len(out)} augmented images ready; manifest: {mf.manifest_path(profile.name)}")
    return out


def drawn_parameters(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per augmented image: its techniques and drawn parameters, for tables and plots."""
    aug = frame[frame.aug_ops.astype(str) != ""]
    params = pd.DataFrame([json.loads(p) for p in aug.aug_params], index=aug.index)
    return pd.concat([aug[["path", "label_name", "aug_source", "aug_ops"]], params], axis=1)


def training_set(frame: pd.DataFrame, profile, control: bool = False) -> pd.DataFrame:
    """The training rows of the study.

    Default (the paper): every real training photograph, the generated training images and the
    augmented generated ones. Control: the real class gets the same mixture as the generated one,
    ``real_train - augment_count`` originals (seeded) plus ``augment_count`` augmented photographs.
    """
    train = frame[frame.split == "train"]
    real = train[(train.label_name == "real") & (train.source != SOURCE["real"])]
    gen = train[train.label_name == "generated"]
    if not control:
        return pd.concat([real, gen]).reset_index(drop=True)
    aug_real = train[train.source == SOURCE["real"]]
    if aug_real.empty:
        raise AugmentError("the control needs augmented real images: run `python -m helpers augment "
                           f"--profile {profile.name} --both-classes`")
    keep = max(0, len(real) - len(aug_real))
    real = real.sample(keep, random_state=profile.seed) if keep < len(real) else real
    return pd.concat([real, aug_real, gen]).reset_index(drop=True)
