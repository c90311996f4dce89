"""The ``inpaint`` step: the same holes in real and generated images, filled by one model, scored.

``python -m helpers inpaint --profile P --model M [--masks free_form|objects|DIR]``

Sets (``inpaint_count`` images each, from the test split, in the common 384 px format):
``MS-COCO`` (real), ``Stable Diffusion`` (ours, generated), and, when a folder is given, ``DALL-E 2``
and ``Imagen`` (any folder of images; smoke uses images of differently configured tiny generators,
labelled as stand-ins). Image i of every set gets the same hole, so hole sizes and shapes are
matched across sets. Results are PNG (lossless) under ``results/<profile>/inpaint/<model>/``, with
``scores.csv`` (per image: NIQE of the result, SIFID between original and result) and ``fid.csv``
(per set: FID between the originals and the results). Finished images are skipped on a rerun.

A learned model whose published weights cannot be fetched (offline) is *skipped*, not an error: the
step prints how to add the weights, writes ``skipped.json`` (the reason) in the model's folder and
exits 0, so that Chapter 3 goes on with the other inpainters and says which are missing. The marker
is removed by the next run that fills the images.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from PIL import Image
from tqdm import tqdm

from . import manifest as mf
from . import masks as mk
from .images import load_rgb
from .paths import atomic_write_bytes, atomic_write_text, data_root, inside, profile_dir, results_root
from .profiles import STANDIN_DIR

REAL, OURS, DALLE2, IMAGEN = "MS-COCO", "Stable Diffusion", "DALL-E 2", "Imagen"
EXTERNAL = {DALLE2: "dalle2_dir", IMAGEN: "imagen_dir"}
MODELS = ("pconv", "deepfill_v2", "sd2_inpaint", "telea", "navier_stokes", "biharmonic")


class InpaintError(RuntimeError):
    """The inpainting step cannot run; the message says what to do."""


def slug(name: str) -> str:
    return name.lower().replace(" ", "_").replace("-", "")


def build(model: str, profile, device: torch.device):
    """The inpainter ``model`` for this profile. Partial convolution and DeepFill v2 load the
    checkpoint :func:`helpers.inpaint_weights.checkpoint_for` names: the setting's path or URL, the
    published weights (fetched on first use; ``WeightsUnavailable`` when they cannot be), or random
    weights in ``smoke``."""
    if model in ("telea", "navier_stokes", "biharmonic"):
        from .inpainters import Classical
        return Classical(model)
    if model == "sd2_inpaint":
        from .inpaint_sd import SDInpainter
        return SDInpainter(profile, device)
    if model in ("pconv", "deepfill_v2"):
        from .inpaint_weights import checkpoint_for
        if model == "pconv":
            from .inpaint_pconv import make
        else:
            from .inpaint_deepfill import make
        return make(checkpoint=checkpoint_for(model, profile), device=device)
    raise InpaintError(f"unknown inpainting model {model!r}; valid: {', '.join(MODELS)}")


def standin_path(profile, name: str) -> Path:
    return profile_dir(profile.name) / f"standin_{slug(name)}"


def standin_folder(profile, name: str, count: int) -> Path:
    """Smoke's stand-in for a DALL-E 2 or Imagen folder: ``count`` images of a differently
    configured tiny generator, made once."""
    from .generate import from_pretrained, generate_batch
    from .tiny_sd import build_tiny_pipeline

    folder = standin_path(profile, name)
    if len(list(folder.glob("*.png"))) >= count:
        return folder
    import diffusers

    variant = {DALLE2: dict(seed=11, scheduler_overrides={"beta_schedule": "linear"}),
               IMAGEN: dict(seed=12, scheduler_overrides={"prediction_type": "epsilon"})}[name]
    location = build_tiny_pipeline(data_root() / "models" / f"tiny-standin-{slug(name)}", **variant)
    pipe = from_pretrained(diffusers.StableDiffusionPipeline, str(location), torch.float32, EXTERNAL[name])
    pipe.set_progress_bar_config(disable=True)
    captions = pd.read_csv(profile_dir(profile.name) / "plan_generated.csv", keep_default_na=False)["caption"]
    for i in range(count):
        target = folder / f"standin_{i:04d}.png"
        if not target.exists():
            img = generate_batch(pipe, profile, [captions.iloc[i % len(captions)]], [variant["seed"] * 1000 + i])[0]
            buf = io.BytesIO()
            img.save(buf, format="PNG")
            atomic_write_bytes(target, buf.getvalue())
    return folder


def external_folders(profile, count: int | None = None) -> dict[str, Path]:
    """The DALL-E 2 and Imagen folders the profile names (``dalle2_dir``, ``imagen_dir``), for
    Chapters 3 and 5. Smoke's stand-in folders are made with ``count`` images when a count is
    given, else only located."""
    out = {}
    for name, setting in EXTERNAL.items():
        value = getattr(profile, setting)
        if value == STANDIN_DIR:
            out[name] = standin_path(profile, name) if count is None else standin_folder(profile, name, count)
        elif value:
            out[name] = Path(value).expanduser().resolve()
    return out


def _folder_images(profile, name: str, folder: Path) -> list[tuple[str, Path]]:
    """The first ``inpaint_count`` readable images of a user's folder, in the common format."""
    from .images import suffix
    from .real_data import convert_all, log_skipped

    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise InpaintError(f"{name} folder {folder} does not exist; give a folder of images with "
                           f"--set {EXTERNAL[name]}=/path (Chapter 3 lists public sets)")
    files = sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))
    target_dir = profile_dir(profile.name) / "images" / "external" / slug(name)
    pairs = [(p, target_dir / f"{p.stem}{suffix(profile)}") for p in files]
    skipped = convert_all(profile, pairs, desc=f"{name} -> common format")
    if skipped:
        log_skipped(profile, skipped, f"inpaint-{slug(name)}")
    ready = [(dst.stem, dst) for src, dst in pairs if dst.exists()]
    return ready[:profile.inpaint_count]


def image_sets(profile) -> dict[str, list[tuple[str, Path]]]:
    """Each set's (key, path) list, in order; index i of every set gets the same hole."""
    frame = mf.originals(mf.load(profile.name))
    test = frame[frame.split == "test"]
    root = data_root()
    sets = {}
    for name, label in ((REAL, "real"), (OURS, "generated")):
        rows = test[test.label_name == label].head(profile.inpaint_count)
        sets[name] = [(Path(p).stem, inside(root, p)) for p in rows.path]
    for name, folder in external_folders(profile, profile.inpaint_count).items():
        sets[name] = _folder_images(profile, name, folder)
    return sets


def mask_seed(profile, index: int) -> int:
    return int(hashlib.sha256(f"{profile.seed}:mask:{index}".encode()).hexdigest()[:15], 16)


def holes(profile, sets: dict, mode: str) -> list[np.ndarray]:
    """One hole per index, shared by every set (the images are all image_size x image_size)."""
    side = profile.image_size
    n = max(len(items) for items in sets.values())
    if mode == "free_form":
        return [mk.free_form(side, side, profile.mask_ratio, mask_seed(profile, i)) for i in range(n)]
    if mode == "objects":
        from .coco import SUBSET_OF_SPLIT
        from .paths import coco_dir

        path = coco_dir(profile) / "annotations" / f"instances_{SUBSET_OF_SPLIT['test']}.json"
        if not path.exists():
            raise InpaintError(f"object masks need {path} (from annotations_trainval2017.zip); "
                               f"the smoke profile's stand-in photographs have none: use --masks free_form")
        instances = mk.load_instances(path)
        out = []
        for i in range(n):
            key = sets[REAL][i][0] if i < len(sets[REAL]) else None
            obj = mk.coco_object(instances, int(key), side, side) if key else None
            out.append(obj if obj is not None else mk.free_form(side, side, profile.mask_ratio, mask_seed(profile, i)))
        return out
    folder = Path(mode)
    if not folder.is_dir():
        raise InpaintError(f"--masks takes free_form, objects or a folder of masks; {folder} is none")
    keys = sets[REAL]
    return [mk.from_folder(folder, keys[i][0] if i < len(keys) else f"{i:04d}", side, side) for i in range(n)]


def out_dir(profile, model: str) -> Path:
    return results_root(profile.name) / "inpaint" / model


def result_path(profile, model: str, set_name: str, index: int, key: str) -> Path:
    return out_dir(profile, model) / slug(set_name) / f"{index:04d}_{key}.png"


def _png(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def use_inception_weights(profile) -> None:
    """Smoke scores with random stand-in Inception weights kept in a torch-hub folder of their own
    (never the user's cache, where a stand-in would later pass for the real file); the other
    profiles use pytorch-fid's published weights from the usual torch-hub cache."""
    from . import quality

    if profile.name == "smoke":
        os.environ["TORCH_HOME"] = str(data_root() / "models" / "torch-home-standin")
        quality.ensure_standin_inception_weights()


def skipped_path(profile, model: str) -> Path:
    """The marker of a model that did not run (its weights could not be fetched), with the reason."""
    return out_dir(profile, model) / "skipped.json"


def skip(profile, model: str, reason: Exception) -> None:
    """Record that ``model`` was skipped and why, so that Chapter 3 runs the other inpainters and
    says which one is missing and how to add it; the step itself then exits 0."""
    print(f"SKIPPED {reason}")
    atomic_write_text(skipped_path(profile, model),
                      json.dumps({"model": model, "reason": str(reason)}, indent=1) + "\n")


def inpaint_sets(profile, model: str, sets: dict, hole_list: list, device) -> tuple[list[dict], int]:
    """Fill every image not filled yet (the network is built only if one is missing); returns one
    row per image and how many were filled now."""
    masks_dir = out_dir(profile, model) / "masks"
    inpainter, done, rows = None, 0, []
    for set_name, items in sets.items():
        for i, (key, path) in enumerate(tqdm(items, desc=f"inpaint {model} {set_name}", unit="img")):
            target = result_path(profile, model, set_name, i, key)
            hole = hole_list[i]
            mask_file = masks_dir / f"{i:04d}.png"
            if not mask_file.exists():
                atomic_write_bytes(mask_file, _png(Image.fromarray((hole * 255).astype(np.uint8))))
            if not target.exists():
                inpainter = inpainter or build(model, profile, device)
                atomic_write_bytes(target, _png(inpainter(load_rgb(path, min_side=1), hole)))
                done += 1
            rows.append(dict(model=model, set=set_name, index=i, key=key, original=str(path),
                             result=str(target), mask=str(mask_file), hole_ratio=float(hole.mean())))
    return rows, done


def run(profile, model: str, mask_mode: str = "free_form") -> pd.DataFrame | None:
    """Inpaint every set with ``model``, then score; returns the per-image scores, or None when the
    model's published weights could not be fetched (recorded by :func:`skip`)."""
    from . import quality
    from .inpaint_weights import WeightsUnavailable

    use_inception_weights(profile)

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    sets = image_sets(profile)
    hole_list = holes(profile, sets, mask_mode)
    started = time.perf_counter()
    try:
        rows, done = inpaint_sets(profile, model, sets, hole_list, device)
    except WeightsUnavailable as exc:
        return skip(profile, model, exc)
    skipped_path(profile, model).unlink(missing_ok=True)
    if done:
        seconds = time.perf_counter() - started
        print(f"inpaint {model}: {done} images in {seconds:.1f} s ({done / seconds:.2f} images/s on {device})")
    scores = pd.DataFrame(rows)
    previous = out_dir(profile, model) / "scores.csv"
    if not done and previous.exists() and (out_dir(profile, model) / "fid.csv").exists():
        old = pd.read_csv(previous)
        if old["result"].tolist() == scores["result"].tolist():
            print(f"scores: {previous} (already computed for these results)")
            return old
    started = time.perf_counter()
    originals = [load_rgb(p, min_side=1) for p in scores.original]
    results = [load_rgb(p, min_side=1) for p in scores.result]
    scores["niqe"] = quality.niqe(results, device=device)
    scores["sifid"] = quality.sifid_pairs(list(zip(originals, results)), device=device)
    standin = profile.name == "smoke"
    fids = []
    for set_name, part in scores.groupby("set", sort=False):
        idx = part.index
        fid = quality.fid([originals[i] for i in idx], [results[i] for i in idx], device=device) \
            if len(idx) >= 2 else float("nan")  # a set of one image has no FID
        fids.append(dict(model=model, set=set_name, images=len(idx), fid=fid,
                         inception_weights="random stand-in" if standin else "pytorch-fid"))
    seconds = time.perf_counter() - started
    print(f"scoring: {len(scores)} images in {seconds:.1f} s ({len(scores) / seconds:.2f} images/s on {device})")
    from .manifest import write_csv
    write_csv(scores, out_dir(profile, model) / "scores.csv")
    write_csv(pd.DataFrame(fids), out_dir(profile, model) / "fid.csv")
    print(f"scores: {out_dir(profile, model) / 'scores.csv'}")
    return scores
