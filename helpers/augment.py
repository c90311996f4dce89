"""The ``augment`` step: the paper's Algorithm 1, and its control.

The paper grows its 7,000 generated training images to 10,000 by applying, at random, random
rotation, Gaussian noise, brightness and contrast changes and colour jitter (sections 4 and 5.1;
the pseudo-code itself is not reproduced in the text). Our reading, stated in Chapter 2:

- the sources are drawn from the generated training images by a seeded permutation (each image is
  used once before any is used twice);
- each new image applies a non-empty subset of the four techniques, drawn uniformly from the 15
  possible subsets, with each parameter drawn uniformly from its range (``AugmentRanges``);
- the operations work on the model's lossless output and the result is then brought to the common
  size and format like every other image, so augmented images are compressed once, as the others.

``--both-classes`` also augments as many real training images the same way (the control of
Chapter 4: with both classes augmented, "augmented" no longer means "generated").
Every image has its own seed: a rerun makes the same files, and an interrupted run resumes.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from PIL import Image
from torchvision.transforms import InterpolationMode
from torchvision.transforms.v2 import functional as TF
from tqdm import tqdm

from . import manifest as mf
from .images import encode, load_rgb, preprocess, suffix
from .paths import atomic_write_bytes, data_root, inside, profile_dir, relative_to_root, sweep_stale_tmp
from .stamps import check_or_write

TECHNIQUES = ("rotation", "noise", "brightness_contrast", "color_jitter")
# Every non-empty subset, in a fixed order: a draw picks one uniformly.
SUBSETS = [c for k in range(1, 5) for c in itertools.combinations(TECHNIQUES, k)]
PARTS = {"generated": "augmented", "real": "augmented_real"}  # manifest parts
SOURCE = dict(zip(("generated", "real"), mf.AUGMENTED_SOURCES))  # the manifest's `source` column


class AugmentError(RuntimeError):
    """The augmentation step cannot run; the message says what to do."""


def aug_seed(base_seed: int, label_name: str, index: int) -> int:
    digest = hashlib.sha256(f"{base_seed}:augment:{label_name}:{index}".encode()).hexdigest()
    return int(digest[:15], 16)


def draw(rng: np.random.Generator, ranges) -> dict:
    """A subset of the techniques and their parameters, drawn from ``ranges``."""
    ops = SUBSETS[int(rng.integers(len(SUBSETS)))]
    params: dict = {"ops": list(ops)}
    if "rotation" in ops:
        params["angle"] = float(rng.uniform(-ranges.rotation_deg, ranges.rotation_deg))
    if "noise" in ops:
        params["sigma"] = float(rng.uniform(*ranges.noise_sigma))
    if "brightness_contrast" in ops:
        params["brightness"] = float(rng.uniform(*ranges.brightness))
        params["contrast"] = float(rng.uniform(*ranges.contrast))
    if "color_jitter" in ops:
        params["saturation"] = float(rng.uniform(*ranges.saturation))
        params["hue"] = float(rng.uniform(*ranges.hue))
    return params


def crop_scale(width: int, height: int, angle_deg: float) -> float:
    """Largest scale s such that an s-scaled, centred crop of the same shape has no empty corner."""
    a = math.radians(abs(angle_deg))
    c, s = math.cos(a), math.sin(a)
    return min(width / (width * c + height * s), height / (width * s + height * c))


def apply(img: Image.Image, params: dict, noise_seed: int) -> Image.Image:
    """Apply the drawn operations in a fixed order: rotation, brightness/contrast, colour, noise."""
    x = TF.to_dtype(TF.to_image(img), torch.float32, scale=True)
    h, w = x.shape[-2:]
    if "angle" in params:
        x = TF.rotate(x, params["angle"], interpolation=InterpolationMode.BILINEAR)
        k = crop_scale(w, h, params["angle"])
        x = TF.center_crop(x, [max(1, int(h * k)), max(1, int(w * k))])
        x = TF.resize(x, [h, w], interpolation=InterpolationMode.BICUBIC, antialias=True).clamp(0, 1)
    if "brightness" in params:
        x = TF.adjust_contrast(TF.adjust_brightness(x, params["brightness"]), params["contrast"])
    if "saturation" in params:
        x = TF.adjust_hue(TF.adjust_saturation(x, params["saturation"]), params["hue"])
    if "sigma" in params:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(noise_seed)
            x = TF.gaussian_noise(x, sigma=params["sigma"], clip=True)
    arr = (x.clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
    return Image.fromarray(arr, mode="RGB")


def sources(profile, frame: pd.DataFrame, label_name: str) -> pd.DataFrame:
    """Training images of one class that augmentation may start from, with their lossless originals."""
    from .generate import raw_path as generated_raw
    from .real_data import plan_paths, raw_path as real_raw

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


def plan(profile, pool: pd.DataFrame, label_name: str) -> list[dict]:
    """The seeded list of augmented images: source, seed and parameters of each."""
    if pool.empty:
        raise AugmentError(f"no {label_name} training images to augment: run `python -m helpers data` "
                           f"and `generate` for profile '{profile.name}' first")
    order = np.random.default_rng([profile.seed, len(pool)]).permutation(len(pool))
    items = []
    for i in range(profile.augment_count):
        src = pool.iloc[int(order[i % len(pool)])]
        seed = aug_seed(profile.seed, label_name, i)
        params = draw(np.random.default_rng(seed), profile.augment)
        items.append(dict(index=i, source=src, seed=seed, params=params))
    return items


def settings(profile) -> dict:
    from dataclasses import asdict
    return dict(augment_count=profile.augment_count, seed=profile.seed, image_size=profile.image_size,
                store_format=profile.store_format, jpeg_quality=profile.jpeg_quality,
                jpeg_subsampling=profile.jpeg_subsampling,
                ranges={k: list(v) if isinstance(v, tuple) else v for k, v in asdict(profile.augment).items()})


def run_class(profile, frame: pd.DataFrame, label_name: str) -> pd.DataFrame:
    items = plan(profile, sources(profile, frame, label_name), label_name)
    check_or_write(profile_dir(profile.name) / "images" / label_name / "train" / "augment_settings.json",
                   settings(profile), f"augmented {label_name} images")
    root, rows = data_root(), []
    todo = [it for it in items if not output_path(profile, label_name, it["index"]).exists()]
    print(f"augment {label_name}: {profile.augment_count} images from {len(set(it['source']['path'] for it in items))} "
          f"training images, {profile.augment_count - len(todo)} already done")
    for it in tqdm(todo, desc=f"augment {label_name}", unit="img", disable=not todo):
        original = it["source"]["original"]
        img = load_rgb(original, min_side=1) if Path(original).exists() else \
            load_rgb(inside(root, it["source"]["path"]), min_side=1)
        out = apply(img, it["params"], it["seed"])
        atomic_write_bytes(output_path(profile, label_name, it["index"]),
                           encode(preprocess(out, profile.image_size), profile))
    for it in items:
        src = it["source"]
        rows.append(dict(
            path=relative_to_root(root, output_path(profile, label_name, it["index"])),
            label=mf.LABELS[label_name], label_name=label_name, split="train",
            source=SOURCE[label_name],
            caption=src["caption"], coco_id=src["coco_id"], seed=it["seed"],
            model_id=src.get("model_id", ""), scheduler=src.get("scheduler", ""),
            steps=src.get("steps", ""), guidance=src.get("guidance", ""),
            orig_width=src["orig_width"], orig_height=src["orig_height"],
            aug_source=src["path"], aug_ops="+".join(it["params"]["ops"]),
            aug_params=json.dumps({k: round(v, 6) for k, v in it["params"].items() if k != "ops"})))
    out = pd.DataFrame(rows)
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
