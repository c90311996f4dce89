"""Chapter 3: the ``inpaint`` step -- the same holes in real and generated images, filled by one
model, scored.

``python -m helpers inpaint --profile P --model M [--masks objects|free_form|DIR]``

Sets (``inpaint_count`` images each, from the test split, in the common 384 px format):
``MS-COCO`` (real), ``Stable Diffusion`` (ours, generated), and, when a folder is given, ``DALL-E 2``
and ``Imagen`` (any folder of images; smoke uses images of differently configured tiny generators,
labelled as stand-ins). Image i of every set gets the same hole, so hole sizes and shapes are
matched across sets.

Holes (``--masks``, by default the profile's ``inpaint_masks``): ``objects``, object removal as in
the paper's Fig. 6 (``course`` and ``paper``), where real photograph i's hole is the outline of one
of its COCO objects, carried through the crop and dilated (:func:`helpers.inpaint.masks.coco_object`),
and the generated sets, which have no annotations, get that hole moved to a seeded random place
(the same area and shape, :func:`helpers.inpaint.masks.matched_holes`); a photograph without a
usable object gets the free-form hole of its index instead, and the step prints how many did
(none at all is an error). ``free_form``: seeded strokes covering ``mask_ratio``, the same in every
set (``smoke``, whose stand-in photographs have no object annotations). A folder: the user's masks.
Each row of ``scores.csv`` names its hole's kind (``hole_kind``: :data:`HOLE_KINDS`).

Results are PNG (lossless) under
``results/<profile>/inpaint/<model>/<set>/`` (the set's name as :func:`helpers.core.files.slug`
writes it), and each index's hole under ``masks/`` (``NNNN.png``, or ``NNNN_matched.png`` for the
generated sets' moved object holes). Finished images are skipped on a rerun; an image whose hole
on disk differs from the hole asked for now (another ``--masks``) is filled again.

Scores (:mod:`helpers.inpaint.scoring`), so that the fill is measured and not only the photograph
around it: ``scores.csv``, one row per image, adds to the row's identity (model, set, index, key,
original, result, mask, hole_ratio, hole_kind) the columns :data:`SCORE_COLUMNS`: NIQE before and
after, PSNR, SSIM and LPIPS inside the hole, SIFID of the whole image and of the hole's box;
``fid.csv``, one row per set, FID and KID. The score networks' weights (LPIPS's, Inception's) are
loaded before anything is filled, so that missing weights stop the step at once, with a message
that names the files and where they go; ``smoke`` writes random stand-ins of both in a torch-hub
folder of its own (:func:`use_score_weights`).

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
from ..core.paths import data_root, inside, profile_dir, results_root
from ..core.profiles import INPAINT_MODELS as MODELS
from ..core.profiles import STANDIN_DIR
from ..data import manifest as mf
from ..data.coco import instances_path
from ..data.generate import from_pretrained, generate_batch
from ..data.images import load_rgb, png_bytes, suffix
from ..data.real_data import convert_all, log_skipped
from ..data.tiny_sd import build_tiny_pipeline
from . import deepfill, hole_scores, inception, lpips, pconv
from . import masks as mk
from .interface import Classical
from .quality import MissingWeights, QualityError, missing_weights
from .scoring import SCORE_COLUMNS, score, scores_on_disk  # noqa: F401 (SCORE_COLUMNS: the step's columns)
from .sd import SDInpainter
from .weights import WeightsUnavailable, checkpoint_for

REAL, OURS, DALLE2, IMAGEN = "MS-COCO", "Stable Diffusion", "DALL-E 2", "Imagen"
EXTERNAL = {DALLE2: "dalle2_dir", IMAGEN: "imagen_dir"}
MATCHED = "_matched"  # a generated set's moved object hole: its kind's and its mask file's suffix
# hole_kind of scores.csv: a COCO object's outline (dilated), seeded free-form strokes, a user's mask,
# and each moved to a new place for the generated sets (objects mode)
HOLE_KINDS = ("object", "free_form", "folder", "object" + MATCHED, "free_form" + MATCHED)


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


def holes(profile, sets: dict, mode: str) -> tuple[dict[str, list[np.ndarray]], dict[str, list[str]]]:
    """Each set's holes, one per index, and each hole's kind (:data:`HOLE_KINDS`). Free-form and
    folder holes are shared by every set; object holes are the real photographs' own, and the
    generated sets, which have no annotations, get them moved to seeded random places
    (:func:`masks.matched_holes`)."""
    shared, kinds = _shared_holes(profile, sets, mode)
    if mode != "objects":
        return {name: shared for name in sets}, {name: kinds for name in sets}
    matched, moved = mk.matched_holes(shared, profile.seed), [kind + MATCHED for kind in kinds]
    return ({name: shared if name == REAL else matched for name in sets},
            {name: kinds if name == REAL else moved for name in sets})


def _shared_holes(profile, sets: dict, mode: str) -> tuple[list[np.ndarray], list[str]]:
    """One hole per index (the images are all image_size x image_size), and its kind."""
    n = max(len(items) for items in sets.values())
    if mode == "free_form":
        return [_free_form(profile, i) for i in range(n)], ["free_form"] * n
    if mode == "objects":
        return _object_holes(profile, [key for key, _ in sets[REAL]], n)
    folder = Path(mode)
    if not folder.is_dir():
        raise InpaintError(f"--masks takes objects, free_form or a folder of masks; {folder} is none")
    keys = [key for key, _ in sets[REAL]]
    side = profile.image_size
    drawn = [mk.from_folder(folder, keys[i] if i < len(keys) else f"{i:04d}", side, side) for i in range(n)]
    return drawn, ["folder"] * n


def _free_form(profile, index: int) -> np.ndarray:
    side = profile.image_size
    return mk.free_form(side, side, profile.mask_ratio, mask_seed(profile, index))


def _instances(profile) -> tuple[Path, dict]:
    """The COCO instance annotations of the test photographs, or a clear error without them."""
    path = instances_path(profile)
    if not path.exists():
        raise InpaintError(f"object masks need {path} (from annotations_trainval2017.zip, which the data step "
                           f"extracts); the smoke profile's stand-in photographs have none: use --masks free_form")
    return path, mk.load_instances(path)


def _object_holes(profile, keys: list[str], n: int) -> tuple[list[np.ndarray], list[str]]:
    """The outline of an annotated object of real photograph i (its COCO id is its key), or the
    free-form hole i where it has no usable object (or there is no photograph i); an error when
    no photograph has one, since object removal would then be free-form strokes under another name."""
    path, instances = _instances(profile)
    not_ids = [key for key in keys if not key.isdigit()]
    if not_ids:
        raise InpaintError(f"--masks objects finds a photograph's objects by its COCO id, its file name; "
                           f"{', '.join(not_ids[:3])} is not one: use --masks free_form")
    side = profile.image_size
    objects = [mk.coco_object(instances, int(keys[i]), side) if i < len(keys) else None for i in range(n)]
    found = [i for i, obj in enumerate(objects) if obj is not None]
    usable = (f"an annotated object (not a crowd) covering {mk.OBJECT_MIN_RATIO:.0%}-{mk.OBJECT_MAX_RATIO:.0%} "
              f"of the image after the crop")
    if not found:
        raise InpaintError(f"--masks objects: none of the {len(keys)} test photographs has {usable} in {path.name}; "
                           f"use --masks free_form, or check that the annotations belong to these photographs")
    if len(found) < n:
        others = [i for i in range(n) if i not in found]
        print(f"holes: {len(found)} of {n} indices have {usable}; the other {len(others)} (index "
              f"{', '.join(map(str, others))}) get free-form holes covering mask_ratio={profile.mask_ratio}, "
              f"in every set (hole_kind free_form in scores.csv)")
    holes = [obj if obj is not None else _free_form(profile, i) for i, obj in enumerate(objects)]
    return holes, ["object" if obj is not None else "free_form" for obj in objects]


def out_dir(profile, model: str) -> Path:
    return results_root(profile.name) / "inpaint" / model


def result_path(profile, model: str, set_name: str, index: int, key: str) -> Path:
    return out_dir(profile, model) / slug(set_name) / f"{index:04d}_{key}.png"


def use_score_weights(profile, device) -> None:
    """Load the score networks' weights now, before hours of inpainting: LPIPS's (AlexNet and its
    linear layers, :mod:`helpers.inpaint.lpips`) and pytorch-fid's Inception. Smoke writes random
    stand-ins of both in a torch-hub folder of its own (never the user's cache, where a stand-in
    would later pass for the real file); the other profiles use the published files from the usual
    torch-hub cache, fetched on first use, and stop with :class:`InpaintError` naming the missing
    files and where they go when that fails (offline)."""
    if profile.name == "smoke":
        os.environ["TORCH_HOME"] = str(data_root() / "models" / "torch-home-standin")
        inception.ensure_standin_inception_weights()
        lpips.ensure_standin_lpips_weights()
    try:
        lpips.lpips_metric(device, spatial=True)
        try:
            inception.inception_model(3, device)
        except (OSError, RuntimeError) as exc:
            raise missing_weights("FID, KID and SIFID", inception.inception_weight_files(), exc) from None
    except MissingWeights as exc:
        raise InpaintError(f"Chapter 3's scores cannot run: {exc}") from None


def skipped_path(profile, model: str) -> Path:
    """The marker of a model that did not run (its weights could not be fetched), with the reason."""
    return out_dir(profile, model) / "skipped.json"


def skip(profile, model: str, reason: Exception) -> None:
    """Record that ``model`` was skipped and why, so that Chapter 3 runs the other inpainters and
    says which one is missing and how to add it; the step itself then exits 0."""
    print(f"SKIPPED {reason}")
    atomic_write_text(skipped_path(profile, model),
                      json.dumps({"model": model, "reason": str(reason)}, indent=1) + "\n")


def inpaint_sets(profile, model: str, sets: dict, hole_list: dict, kinds: dict, device) -> tuple[list[dict], int]:
    """Fill every image not filled yet (the network is built only if one is missing); returns one
    row per image and how many were filled now."""
    masks_dir = out_dir(profile, model) / "masks"
    inpainter, done, rows = None, 0, []
    for set_name, items in sets.items():
        for i, (key, path) in enumerate(tqdm(items, desc=f"inpaint {model} {set_name}", unit="img")):
            target = result_path(profile, model, set_name, i, key)
            hole, kind = hole_list[set_name][i], kinds[set_name][i]
            # a moved hole (objects mode, generated sets) is not the real photograph's: a file of its own
            mask_file = masks_dir / f"{i:04d}{MATCHED if kind.endswith(MATCHED) else ''}.png"
            if _write_mask(mask_file, hole) and target.exists():
                print(f"{target}: its hole changed ({mask_file}); filling it again")
                target.unlink()
            if not target.exists():
                inpainter = inpainter or build(model, profile, device)
                atomic_write_bytes(target, png_bytes(inpainter(load_rgb(path, min_side=1), hole)))
                done += 1
            rows.append(dict(model=model, set=set_name, index=i, key=key, original=str(path), result=str(target),
                             mask=str(mask_file), hole_ratio=float(hole.mean()), hole_kind=kind))
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


def run(profile, model: str, mask_mode: str | None = None) -> pd.DataFrame | None:
    """Inpaint every set with ``model`` through the holes of ``mask_mode`` (None: the profile's
    ``inpaint_masks``), then score; returns the per-image scores, or None when the model's
    published weights could not be fetched (recorded by :func:`skip`)."""
    device = default_device()
    use_score_weights(profile, device)
    sets = image_sets(profile)
    hole_list, kinds = holes(profile, sets, mask_mode or profile.inpaint_masks)
    started = time.perf_counter()
    try:
        rows, done = inpaint_sets(profile, model, sets, hole_list, kinds, device)
    except WeightsUnavailable as exc:
        return skip(profile, model, exc)
    skipped_path(profile, model).unlink(missing_ok=True)
    if done:
        seconds = time.perf_counter() - started
        print(f"inpaint {model}: {done} images in {seconds:.1f} s ({done / seconds:.2f} images/s on {device})")
    folder = out_dir(profile, model)
    scores = pd.DataFrame(rows)
    previous = None if done else scores_on_disk(folder, scores)
    if previous is not None:
        return previous
    scores, fids = score(profile, model, scores, device)
    mf.write_csv(scores, folder / "scores.csv")
    mf.write_csv(fids, folder / "fid.csv")
    print(f"scores: {folder / 'scores.csv'}")
    return scores
