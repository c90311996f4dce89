"""Chapter 3: the ``inpaint`` step -- the same holes in real and generated images, filled by one
model, scored.

``python -m helpers inpaint --profile P --model M [--masks free_form|objects|DIR]``

Sets (``inpaint_count`` images each, from the test split, in the common 384 px format):
``MS-COCO`` (real), ``Stable Diffusion`` (ours, generated), and, when a folder is given, ``DALL-E 2``
and ``Imagen`` (any folder of images; smoke uses images of differently configured tiny generators,
labelled as stand-ins). Image i of every set gets the same hole, so hole sizes and shapes are
matched across sets; with ``--masks objects`` the generated sets get real photograph i's object
hole moved to a seeded random place (the same area and shape). Results are PNG (lossless) under
``results/<profile>/inpaint/<model>/<set>/`` (the set's name as :func:`helpers.core.files.slug`
writes it), and each index's hole under ``masks/`` (``NNNN.png``, or ``NNNN_matched.png`` for the
generated sets' moved object holes). Finished images are skipped on a rerun; an image whose hole
on disk differs from the hole asked for now (another ``--masks``) is filled again.

Scores (:func:`score`), so that the fill is measured and not only the photograph around it:
``scores.csv``, one row per image, adds to the row's identity (model, set, index, key, original,
result, mask, hole_ratio) the columns :data:`SCORE_COLUMNS`: NIQE of the original and of the
result (``niqe_before``, ``niqe_after``), PSNR and SSIM inside the hole against the original
(:mod:`helpers.inpaint.hole_scores`), and SIFID of the whole image and of the hole's box
(``sifid``, ``sifid_hole``). ``fid.csv``, one row per set, has FID and the unbiased KID between
the set's originals and its results on the same Inception pool features.

A learned model whose published weights cannot be fetched (offline) is *skipped*, not an error: the
step prints how to add the weights, writes ``skipped.json`` (the reason) in the model's folder and
exits 0, so that Chapter 3 goes on with the other inpainters and says which are missing. The marker
is removed by the next run that fills the images.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from PIL import Image
from tqdm import tqdm

from ..core.distributed import default_device
from ..core.files import atomic_write_bytes, atomic_write_text, list_files, slug
from ..core.paths import coco_dir, data_root, inside, profile_dir, results_root
from ..core.profiles import INPAINT_MODELS as MODELS
from ..core.profiles import STANDIN_DIR
from ..data import manifest as mf
from ..data.coco import SUBSET_OF_SPLIT
from ..data.generate import from_pretrained, generate_batch
from ..data.images import load_rgb, png_bytes, suffix
from ..data.real_data import convert_all, log_skipped
from ..data.tiny_sd import build_tiny_pipeline
from . import deepfill, fid, hole_scores, inception, niqe, pconv
from . import masks as mk
from .interface import Classical
from .quality import QualityError
from .sd import SDInpainter
from .weights import WeightsUnavailable, checkpoint_for

REAL, OURS, DALLE2, IMAGEN = "MS-COCO", "Stable Diffusion", "DALL-E 2", "Imagen"
EXTERNAL = {DALLE2: "dalle2_dir", IMAGEN: "imagen_dir"}
SCORE_COLUMNS = ("niqe_before", "niqe_after", "psnr_hole", "ssim_hole", "sifid", "sifid_hole")
SET_SCORE_COLUMNS = ("fid", "kid")


class InpaintError(RuntimeError):
    """The inpainting step cannot run; the message says what to do."""


def build(model: str, profile, device: torch.device):
    """The inpainter ``model`` for this profile. Partial convolution and DeepFill v2 load the
    checkpoint :func:`helpers.inpaint.weights.checkpoint_for` names: the setting's path or URL, the
    published weights (fetched on first use; ``WeightsUnavailable`` when they cannot be), or random
    weights in ``smoke``."""
    if model in ("telea", "navier_stokes", "biharmonic"):
        return Classical(model)
    if model == "sd2_inpaint":
        return SDInpainter(profile, device)
    if model in ("pconv", "deepfill_v2"):
        make = pconv.make if model == "pconv" else deepfill.make
        return make(checkpoint=checkpoint_for(model, profile), device=device)
    raise InpaintError(f"unknown inpainting model {model!r}; valid: {', '.join(MODELS)}")


def standin_path(profile, name: str) -> Path:
    return profile_dir(profile.name) / f"standin_{slug(name)}"


def standin_folder(profile, name: str, count: int) -> Path:
    """Smoke's stand-in for a DALL-E 2 or Imagen folder: ``count`` images of a differently
    configured tiny generator, made once."""
    folder = standin_path(profile, name)
    if len(list(folder.glob("*.png"))) >= count:
        return folder
    import diffusers  # lazily: only smoke's stand-ins need the diffusers pipeline

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
            atomic_write_bytes(target, png_bytes(img))
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
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise InpaintError(f"{name} folder {folder} does not exist; give a folder of images with "
                           f"--set {EXTERNAL[name]}=/path (Chapter 3 lists public sets)")
    files = list_files(folder)
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


def holes(profile, sets: dict, mode: str) -> dict[str, list[np.ndarray]]:
    """Each set's holes, one per index. Free-form and folder holes are shared by every set; object
    holes are the real photographs' own, and the generated sets, which have no annotations, get
    them moved to seeded random places (:func:`masks.matched_holes`)."""
    shared = _shared_holes(profile, sets, mode)
    if mode != "objects":
        return {name: shared for name in sets}
    matched = mk.matched_holes(shared, profile.seed)
    return {name: shared if name == REAL else matched for name in sets}


def _shared_holes(profile, sets: dict, mode: str) -> list[np.ndarray]:
    """One hole per index (the images are all image_size x image_size)."""
    n = max(len(items) for items in sets.values())
    if mode == "free_form":
        return [_free_form(profile, i) for i in range(n)]
    if mode == "objects":
        return _object_holes(profile, [key for key, _ in sets[REAL]], n)
    folder = Path(mode)
    if not folder.is_dir():
        raise InpaintError(f"--masks takes free_form, objects or a folder of masks; {folder} is none")
    keys = [key for key, _ in sets[REAL]]
    side = profile.image_size
    return [mk.from_folder(folder, keys[i] if i < len(keys) else f"{i:04d}", side, side) for i in range(n)]


def _free_form(profile, index: int) -> np.ndarray:
    side = profile.image_size
    return mk.free_form(side, side, profile.mask_ratio, mask_seed(profile, index))


def _object_holes(profile, keys: list[str], n: int) -> list[np.ndarray]:
    """The outline of an annotated object of real photograph i (its COCO id is its key), or the
    free-form hole i where there is none."""
    path = coco_dir(profile) / "annotations" / f"instances_{SUBSET_OF_SPLIT['test']}.json"
    if not path.exists():
        raise InpaintError(f"object masks need {path} (from annotations_trainval2017.zip); "
                           f"the smoke profile's stand-in photographs have none: use --masks free_form")
    instances = mk.load_instances(path)
    side = profile.image_size
    out = []
    for i in range(n):
        obj = mk.coco_object(instances, int(keys[i]), side) if i < len(keys) else None
        out.append(obj if obj is not None else _free_form(profile, i))
    return out


def out_dir(profile, model: str) -> Path:
    return results_root(profile.name) / "inpaint" / model


def result_path(profile, model: str, set_name: str, index: int, key: str) -> Path:
    return out_dir(profile, model) / slug(set_name) / f"{index:04d}_{key}.png"


def use_inception_weights(profile) -> None:
    """Smoke scores with random stand-in Inception weights kept in a torch-hub folder of their own
    (never the user's cache, where a stand-in would later pass for the real file); the other
    profiles use pytorch-fid's published weights from the usual torch-hub cache."""
    if profile.name == "smoke":
        os.environ["TORCH_HOME"] = str(data_root() / "models" / "torch-home-standin")
        inception.ensure_standin_inception_weights()


def skipped_path(profile, model: str) -> Path:
    """The marker of a model that did not run (its weights could not be fetched), with the reason."""
    return out_dir(profile, model) / "skipped.json"


def skip(profile, model: str, reason: Exception) -> None:
    """Record that ``model`` was skipped and why, so that Chapter 3 runs the other inpainters and
    says which one is missing and how to add it; the step itself then exits 0."""
    print(f"SKIPPED {reason}")
    atomic_write_text(skipped_path(profile, model),
                      json.dumps({"model": model, "reason": str(reason)}, indent=1) + "\n")


def inpaint_sets(profile, model: str, sets: dict, hole_list: dict, device) -> tuple[list[dict], int]:
    """Fill every image not filled yet (the network is built only if one is missing); returns one
    row per image and how many were filled now."""
    masks_dir = out_dir(profile, model) / "masks"
    inpainter, done, rows = None, 0, []
    for set_name, items in sets.items():
        set_holes = hole_list[set_name]
        # a set whose holes are not the real photographs' own (objects mode: matched holes) keeps its own files
        suffix = "_matched" if set_holes is not hole_list.get(REAL, set_holes) else ""
        for i, (key, path) in enumerate(tqdm(items, desc=f"inpaint {model} {set_name}", unit="img")):
            target = result_path(profile, model, set_name, i, key)
            hole = set_holes[i]
            mask_file = masks_dir / f"{i:04d}{suffix}.png"
            if _write_mask(mask_file, hole) and target.exists():
                print(f"{target}: its hole changed ({mask_file}); filling it again")
                target.unlink()
            if not target.exists():
                inpainter = inpainter or build(model, profile, device)
                atomic_write_bytes(target, png_bytes(inpainter(load_rgb(path, min_side=1), hole)))
                done += 1
            rows.append(dict(model=model, set=set_name, index=i, key=key, original=str(path),
                             result=str(target), mask=str(mask_file), hole_ratio=float(hole.mean())))
    return rows, done


def _write_mask(mask_file: Path, hole: np.ndarray) -> bool:
    """Write ``hole`` to ``mask_file`` unless the file already holds it; True when a different
    hole was there (so the result filled through it is stale)."""
    if mask_file.exists():
        try:
            if np.array_equal(hole_scores.read_hole(mask_file), hole):
                return False
        except QualityError:
            pass  # unreadable: written again, and its result filled again
        changed = True
    else:
        changed = False
    atomic_write_bytes(mask_file, png_bytes(Image.fromarray((hole * 255).astype(np.uint8))))
    return changed


def run(profile, model: str, mask_mode: str = "free_form") -> pd.DataFrame | None:
    """Inpaint every set with ``model``, then score; returns the per-image scores, or None when the
    model's published weights could not be fetched (recorded by :func:`skip`)."""
    use_inception_weights(profile)
    device = default_device()
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
    previous = None if done else scores_on_disk(profile, model, scores)
    if previous is not None:
        return previous
    scores, fids = score(profile, model, scores, device)
    mf.write_csv(scores, out_dir(profile, model) / "scores.csv")
    mf.write_csv(fids, out_dir(profile, model) / "fid.csv")
    print(f"scores: {out_dir(profile, model) / 'scores.csv'}")
    return scores


def scores_on_disk(profile, model: str, scores: pd.DataFrame) -> pd.DataFrame | None:
    """The scores an earlier run computed for exactly these results and holes, or None (also when
    they lack a column of :data:`SCORE_COLUMNS` or :data:`SET_SCORE_COLUMNS`: an older run's)."""
    folder = out_dir(profile, model)
    previous, fids = folder / "scores.csv", folder / "fid.csv"
    if not (previous.exists() and fids.exists()):
        return None
    old = pd.read_csv(previous)
    missing = [c for c in ("result", "mask", *SCORE_COLUMNS) if c not in old.columns]
    missing += [c for c in SET_SCORE_COLUMNS if c not in pd.read_csv(fids, nrows=0).columns]
    if missing:
        print(f"scores: {previous} lacks {', '.join(missing)}; scoring again")
        return None
    if old["result"].tolist() != scores["result"].tolist() or old["mask"].tolist() != scores["mask"].tolist():
        return None
    print(f"scores: {previous} (already computed for these results)")
    return old


def score(profile, model: str, scores: pd.DataFrame, device) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The columns :data:`SCORE_COLUMNS` of each image, added to ``scores``, and FID and KID of
    each set (:func:`set_scores`).

    The hole of each row is read back from the mask file the step wrote (``mask``). ``niqe_before``
    and ``niqe_after`` are the same NIQE on the same device, of the original and of the result;
    ``psnr_hole`` and ``ssim_hole`` compare the fill with the original inside the hole;
    ``sifid_hole`` is SIFID of the hole's bounding box, grown to at least
    :data:`helpers.inpaint.hole_scores.HOLE_BOX_MIN` px a side with the image's own pixels (never
    resized), since a smaller crop gives SIFID's 64-d Gaussians fewer positions than dimensions.
    An empty hole scores NaN inside it.
    """
    started = time.perf_counter()
    originals = [load_rgb(p, min_side=1) for p in scores.original]
    results = [load_rgb(p, min_side=1) for p in scores.result]
    holes = [hole_scores.read_hole(m, img.size[::-1]) for m, img in zip(scores["mask"], originals)]
    scores["niqe_before"] = niqe.niqe(originals, device=device)
    scores["niqe_after"] = niqe.niqe(results, device=device)
    inside = pd.DataFrame([hole_scores.scores_in_hole(o, r, h) for o, r, h in zip(originals, results, holes)],
                          index=scores.index, columns=["psnr_hole", "ssim_hole"])
    scores[["psnr_hole", "ssim_hole"]] = inside
    scores["sifid"] = fid.sifid_pairs(list(zip(originals, results)), device=device)
    scores["sifid_hole"] = sifid_in_boxes(originals, results, holes, device)
    fids = set_scores(profile, model, scores, originals, results, device)
    seconds = time.perf_counter() - started
    print(f"scoring: {len(scores)} images in {seconds:.1f} s ({len(scores) / seconds:.2f} images/s on {device})")
    return scores, fids


def sifid_in_boxes(originals: list, results: list, holes: list, device) -> np.ndarray:
    """SIFID of each (original, result) pair cropped to its hole's grown bounding box
    (:func:`helpers.inpaint.hole_scores.hole_crops`); NaN where the hole is empty."""
    crops = [hole_scores.hole_crops(o, r, h) for o, r, h in zip(originals, results, holes)]
    out = np.full(len(crops), np.nan, dtype=np.float64)
    kept = [i for i, pair in enumerate(crops) if pair is not None]
    if kept:
        out[kept] = fid.sifid_pairs([crops[i] for i in kept], device=device)
    return out


def set_scores(profile, model: str, scores: pd.DataFrame, originals: list, results: list,
               device) -> pd.DataFrame:
    """FID and unbiased KID of each set, between its originals and its results, from one pass of
    Inception pool features (:func:`helpers.inpaint.fid.pool_features`); NaN for a set of one
    image (neither is defined on one sample)."""
    net = inception.inception_model(3, device)
    feats_o, feats_r = fid.pool_features(originals, net), fid.pool_features(results, net)
    weights = "random stand-in" if profile.name == "smoke" else "pytorch-fid"
    rows = []
    for set_name, part in scores.groupby("set", sort=False):
        idx = np.flatnonzero(scores.index.isin(part.index))
        a, b = feats_o[idx], feats_r[idx]
        enough = len(idx) >= 2
        rows.append(dict(model=model, set=set_name, images=len(idx),
                         fid=fid.frechet_distance(a, b) if enough else float("nan"),
                         kid=fid.kernel_distance(a, b) if enough else float("nan"),
                         inception_weights=weights))
    return pd.DataFrame(rows)
