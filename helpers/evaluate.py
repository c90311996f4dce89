"""The ``evaluate`` and ``predict`` steps: P(generated) for images, metrics, the shortcut check, figures.

``python -m helpers evaluate --profile P [--model KEY] [--checkpoint PATH]
[--images DIR --label generated|real [--real test|DIR] [--categories CSV]] [--reencode jpeg:75|resize:256]``

scores the manifest's test split (originals only) with a trained classifier, or every readable
image of a folder (all given one label: the paper's DALL-E 2 and Imagen transfer figures), and
writes ``results/<profile>/eval/<name>/predictions.csv`` (path, label, p_generated, predicted) and
``metrics.json``. The name comes from the checkpoint's run folder, the set and the re-encoding
(``paper-best_test``, ``paper-best_test_jpeg75``, ``paper-best_dalle2``, ``vgg16-best_test``). A
rerun with the same checkpoint file, images and settings reads the files back instead of
predicting again. ``--model`` picks one of Table 3's backbones (:mod:`helpers.backbones`) and its
run's ``best.pt``.

A folder of generated images alone gives one number, the share called generated: the paper's
DALL-E 2 and Imagen figures. Balanced accuracy, ROC-AUC and AP need real images too and are
refused without them; ``--real test`` adds the study's real test photographs, ``--real DIR`` a
folder of photographs matched to the generated ones. ``--categories CSV`` (columns ``file``,
``category``) breaks the result down by kind of image (photo, artwork, illustration...).

A folder's images are first brought to the study's common format (the data step's resize and
JPEG, in memory), as both training classes were: the classifier is then judged on content, not on
how a website stored the files.

The shortcut check (``--reencode``): both classes re-encoded as JPEG at a lower quality, or shrunk
and enlarged back, before prediction. A classifier that learned the content of generated images
keeps most of its accuracy; one that learned a trace of the file format or of resampling loses it.

``python -m helpers predict PATH... [--checkpoint C] [--csv OUT]`` prints P(generated) for images or
folders of images; files that cannot be read are listed with their reason, never a crash.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlparse

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from PIL import Image
from torchvision.transforms import InterpolationMode
from torchvision.transforms.v2 import functional as TF
from tqdm import tqdm

from . import backbones
from . import manifest as mf
from .images import BadImage, encode, load_rgb, preprocess
from .metrics import binary_metrics, bootstrap_ci, roc_points
from .models import HEADS
from .paths import atomic_write_text, data_root, inside, results_root
from .profiles import add_profile_arguments

LABEL_NAMES = {v: k for k, v in mf.LABELS.items()}  # 0 -> "real", 1 -> "generated"
THRESHOLD = 0.5
# timm's ImageNet defaults, which the ConvNeXt checkpoints were trained with.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class EvaluateError(RuntimeError):
    """Evaluation cannot run; the message names the file or setting and what to do."""


# -- the classifier -----------------------------------------------------------------------------

def default_checkpoint(profile, model: str = backbones.DEFAULT) -> Path:
    """``results/<profile>/train/<run>/best.pt``: the trainer's best epoch of the paper's recipe
    (run ``paper``), or of another backbone of Table 3 (run ``vgg16``...)."""
    return results_root(profile.name) / "train" / backbones.run_name(model) / "best.pt"


def _is_url(source) -> bool:
    return urlparse(str(source)).scheme in ("http", "https")


def _checkpoint_path(profile, checkpoint, model: str = backbones.DEFAULT) -> Path | str:
    """The checkpoint to use (default: the model's run's best), checked to exist."""
    if checkpoint is None:
        checkpoint = default_checkpoint(profile, model)
    if _is_url(checkpoint):
        return str(checkpoint)
    path = Path(checkpoint).expanduser().resolve()
    if not path.is_file():
        flag = "" if model == backbones.DEFAULT else f" --model {model}"
        raise EvaluateError(
            f"checkpoint {path} does not exist: train first (`python -m helpers train --profile "
            f"{profile.name}{flag}`) or give the file with --checkpoint PATH")
    return path


def load_classifier(profile, checkpoint) -> torch.nn.Module:
    """The profile's classifier with the trained weights of ``checkpoint`` (strictly), in eval mode.

    The checkpoint is a dict holding the state dict under ``"model"``, read with
    ``weights_only=True``; a file that does not fit the profile's model is refused with the keys
    and shapes that differ.
    """
    from .checkpoints import load_into, load_state
    from .models import build_model  # lazily: the trainer's module, with timm behind it

    model = build_model(profile, pretrained="none")
    state = load_state(checkpoint, "model")
    load_into(model, state, f"the classifier {profile.train_model!r} with the {profile.train_head!r} "
                            f"head (train_head) from {checkpoint}; a checkpoint of another backbone "
                            f"needs --model ({', '.join(backbones.KEYS)})")
    return model.eval()


def _device(device=None) -> torch.device:
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


# -- from a file to the model's input -----------------------------------------------------------

def parse_reencode(spec) -> tuple[str, int] | None:
    """``"jpeg:75"`` -> ``("jpeg", 75)``, ``"resize:256"`` -> ``("resize", 256)``; None stays None."""
    if spec is None or spec == "" or spec == "none":
        return None
    if isinstance(spec, str):
        kind, sep, value = spec.partition(":")
        if not sep:
            raise EvaluateError(f"--reencode takes jpeg:QUALITY or resize:SIDE, got {spec!r}")
    else:
        try:
            kind, value = spec
        except (TypeError, ValueError):
            raise EvaluateError(f"reencode must be ('jpeg', quality) or ('resize', side), got {spec!r}") from None
    kind = str(kind).strip().lower()
    try:
        value = int(str(value).strip())
    except ValueError:
        raise EvaluateError(f"reencode {spec!r}: {value!r} is not a whole number") from None
    if kind == "jpeg" and not 1 <= value <= 100:
        raise EvaluateError(f"reencode {spec!r}: a JPEG quality is within 1..100")
    if kind == "resize" and value < 8:
        raise EvaluateError(f"reencode {spec!r}: the side must be at least 8 pixels")
    if kind not in ("jpeg", "resize"):
        raise EvaluateError(f"reencode {spec!r}: the kind is 'jpeg' or 'resize', not {kind!r}")
    return kind, value


def reencode_image(img: Image.Image, spec) -> Image.Image:
    """``img`` through a lossy round trip, at its own size.

    ``("jpeg", q)``: saved as JPEG quality ``q`` (4:2:0) and decoded again, in memory.
    ``("resize", side)``: shrunk so that its shorter side is ``side`` (anti-aliased), then enlarged
    back to its own size: the fine detail above that scale is gone.
    """
    kind, value = parse_reencode(spec)
    if kind == "jpeg":
        buf = io.BytesIO()
        img.convert("RGB").save(buf, format="JPEG", quality=value, subsampling="4:2:0")
        buf.seek(0)
        with Image.open(buf) as out:
            return out.convert("RGB")
    w, h = img.size
    scale = value / min(w, h)
    small = img.resize((max(1, round(w * scale)), max(1, round(h * scale))), Image.Resampling.LANCZOS)
    return small.resize((w, h), Image.Resampling.BICUBIC)


def common_format(img: Image.Image, profile) -> Image.Image:
    """``img`` as the data step stores both classes (side, format, quality), in memory."""
    with Image.open(io.BytesIO(encode(preprocess(img, profile.image_size), profile))) as out:
        return out.convert("RGB")


def to_model_input(img: Image.Image, img_size: int) -> torch.Tensor:
    """A (3, img_size, img_size) float tensor: shorter side resized with anti-aliasing, centre
    crop, ImageNet mean/std (timm's defaults)."""
    x = TF.pil_to_tensor(img.convert("RGB"))
    x = TF.resize(x, [img_size], interpolation=InterpolationMode.BILINEAR, antialias=True)
    x = TF.center_crop(x, [img_size, img_size])
    x = x.to(torch.float32) / 255.0
    return TF.normalize(x, list(IMAGENET_MEAN), list(IMAGENET_STD))


def probabilities(out: torch.Tensor, head: str) -> torch.Tensor:
    """P(generated) from the model's outputs: ``sigmoid(out[:, 1])`` for the paper's 2-output head,
    ``sigmoid(out[:, 0])`` for a single logit."""
    if isinstance(out, (tuple, list)):
        out = out[0]
    if head == "paper":
        if out.ndim != 2 or out.shape[1] != 2:
            raise EvaluateError(f"the 'paper' head gives 2 outputs per image; this model gives shape "
                                f"{tuple(out.shape)}: check train_head (--set train_head=logit?)")
        return torch.sigmoid(out[:, 1].float())
    if head == "logit":
        if out.ndim == 2 and out.shape[1] == 1:
            out = out[:, 0]
        if out.ndim != 1:
            raise EvaluateError(f"the 'logit' head gives 1 output per image; this model gives shape "
                                f"{tuple(out.shape)}: check train_head (--set train_head=paper?)")
        return torch.sigmoid(out.float())
    raise EvaluateError(f"unknown head {head!r}; valid: {', '.join(HEADS)}")


def predict_images(model: torch.nn.Module, paths: Iterable, img_size: int, head: str, device=None,
                   batch_size: int = 16, *, transform: Callable[[Image.Image], Image.Image] | None = None,
                   skipped: dict | None = None, min_side: int = 32, max_pixels: int = 64_000_000,
                   progress: bool = False) -> np.ndarray:
    """P(generated) for each file of ``paths``, in order; NaN for a file that cannot be read.

    Files are decoded with :func:`helpers.images.load_rgb` (a bad one is skipped, its reason put
    in ``skipped[path]`` when a dict is given), passed through ``transform`` (a PIL -> PIL
    function, e.g. a re-encoding), then :func:`to_model_input`. Batches run in eval mode under
    ``torch.inference_mode``, with bf16 autocast on CUDA.
    """
    if head not in HEADS:
        raise EvaluateError(f"unknown head {head!r}; valid: {', '.join(HEADS)}")
    if batch_size < 1:
        raise EvaluateError(f"batch_size must be at least 1, got {batch_size}")
    paths = list(paths)
    device = _device(device)
    model = model.to(device).eval()
    probs = np.full(len(paths), np.nan)

    def load(path):
        try:
            img = load_rgb(path, min_side=min_side, max_pixels=max_pixels)
            if transform is not None:
                img = transform(img)
            return to_model_input(img, img_size), None
        except BadImage as exc:
            return None, str(exc)

    autocast = (torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda"
                else torch.autocast("cpu", enabled=False))
    workers = max(1, min(8, batch_size))
    with ThreadPoolExecutor(max_workers=workers) as pool, torch.inference_mode():
        for start in tqdm(range(0, len(paths), batch_size), desc="predict", unit="batch",
                          disable=not progress):
            chunk = paths[start:start + batch_size]
            loaded = list(pool.map(load, chunk))
            good = [i for i, (x, _) in enumerate(loaded) if x is not None]
            if skipped is not None:
                skipped.update({chunk[i]: reason for i, (_, reason) in enumerate(loaded) if reason})
            if not good:
                continue
            x = torch.stack([loaded[i][0] for i in good]).to(device, non_blocking=True)
            with autocast:
                out = model(x)
            probs[[start + i for i in good]] = probabilities(out, head).cpu().numpy()
    return probs


# -- which images ---------------------------------------------------------------------------------

def test_images(profile) -> pd.DataFrame:
    """The manifest's test split, originals only: ``path`` (relative to the data root), ``label``."""
    frame = mf.originals(mf.load(profile.name))
    test = frame[frame["split"] == "test"]
    if test.empty:
        raise EvaluateError(f"{mf.manifest_path(profile.name)} has no test images: run the data and "
                            f"generate steps first (`python -m helpers data --profile {profile.name}`)")
    return pd.DataFrame({"path": test["path"].astype(str).tolist(),
                         "label": test["label"].astype(int).tolist()})


def folder_images(folder, label: str) -> pd.DataFrame:
    """Every file of ``folder`` (not its subfolders, no hidden files), all with one ``label``."""
    if label not in mf.LABELS:
        raise EvaluateError(f"give the label of the folder's images: 'generated' or 'real', not {label!r}")
    folder = Path(folder).expanduser().resolve()
    if not folder.is_dir():
        raise EvaluateError(f"{folder} is not a folder; --images takes a folder of images")
    files = sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))
    if not files:
        raise EvaluateError(f"{folder} holds no files; put the images to evaluate in it")
    return pd.DataFrame({"path": [str(p) for p in files], "label": mf.LABELS[label]})


def image_file(path: str) -> Path:
    """A ``predictions.csv`` path as a file: absolute as it is, else under the data root."""
    p = Path(path)
    return p if p.is_absolute() else inside(data_root(), path)


def _slug(text: str) -> str:
    out = "".join(c if c.isalnum() or c in ".-" else "-" for c in text.lower())
    return "-".join(part for part in out.split("-") if part) or "set"


def eval_name(checkpoint, set_name: str, reencode=None) -> str:
    """``<run>-<checkpoint>_<set>[_jpeg75|_resize256]``, e.g. ``paper-best_test_jpeg75``."""
    path = Path(urlparse(str(checkpoint)).path) if _is_url(checkpoint) else Path(checkpoint)
    name = f"{_slug(path.parent.name or 'checkpoint')}-{_slug(path.stem)}_{_slug(set_name)}"
    spec = parse_reencode(reencode)
    return name + (f"_{spec[0]}{spec[1]}" if spec else "")


def eval_dir(profile, name: str) -> Path:
    return results_root(profile.name) / "eval" / name


def _fingerprint(files: list[Path]) -> str:
    """Which files, of which size and time: changes when a step rewrites an image."""
    h = hashlib.sha256()
    for f in files:
        try:
            st = f.stat()
            h.update(f"{f}\t{st.st_size}\t{st.st_mtime_ns}\n".encode())
        except OSError:
            h.update(f"{f}\tmissing\n".encode())
    return h.hexdigest()


def _checkpoint_stamp(checkpoint) -> dict:
    if _is_url(checkpoint):
        return {"checkpoint": str(checkpoint)}
    st = Path(checkpoint).stat()
    return {"checkpoint": str(checkpoint), "checkpoint_bytes": st.st_size,
            "checkpoint_mtime_ns": st.st_mtime_ns}


# -- evaluation -----------------------------------------------------------------------------------

def _cached_loader(profile, checkpoint) -> Callable[[], torch.nn.Module]:
    """A function that loads the classifier on its first call only (reruns may need none)."""
    held: list = []

    def get():
        if not held:
            held.append(load_classifier(profile, checkpoint))
        return held[0]
    return get


def load_result(profile, name: str) -> dict:
    """An evaluation written before: ``name``, ``dir``, ``metrics``, ``predictions``, ``skipped``..."""
    folder = eval_dir(profile, name)
    metrics_file, predictions_file = folder / "metrics.json", folder / "predictions.csv"
    if not (metrics_file.exists() and predictions_file.exists()):
        raise EvaluateError(f"{folder} holds no finished evaluation: run `python -m helpers evaluate "
                            f"--profile {profile.name}` first")
    saved = json.loads(metrics_file.read_text(encoding="utf-8"))
    predictions = pd.read_csv(predictions_file, dtype={"path": str})
    return {"name": saved["name"], "dir": folder, "metrics": saved["metrics"],
            "accuracy_ci95": saved.get("accuracy_ci95"), "settings": saved["settings"],
            "skipped": saved.get("skipped", []), "predictions": predictions, "speed": saved.get("speed")}


def _image_parts(profile, images_dir, label, real) -> tuple[str, list[tuple[pd.DataFrame, bool]], dict]:
    """The set's name, its parts (images, whether they come from a user's folder) and what it holds."""
    if images_dir is None:
        if label is not None or real is not None:
            raise EvaluateError("--label and --real go with --images DIR: the test split's labels come "
                                "from the manifest")
        return "test", [(test_images(profile), False)], {"images": "test split"}
    if label is None:
        raise EvaluateError(f"give --label generated or --label real for the images of {images_dir}")
    folder = Path(images_dir).expanduser().resolve()
    parts = [(folder_images(folder, label), True)]
    name = "folder-test" if folder.name == "test" else folder.name
    held = {"images": str(folder), "label": label, "real": None}
    if real is not None:
        if label != "generated":
            raise EvaluateError("--real adds photographs to a folder of generated images; this folder "
                                "is labelled real already")
        if str(real) == "test":
            photos = test_images(profile)
            parts.append((photos[photos["label"] == mf.LABELS["real"]].reset_index(drop=True), False))
            name, held["real"] = f"{name}+real-test", "test split"
        else:
            real_folder = Path(real).expanduser().resolve()
            parts.append((folder_images(real_folder, "real"), True))
            name, held["real"] = f"{name}+real-{real_folder.name}", str(real_folder)
    return name, parts, held


def _evaluate(profile, checkpoint, images_dir, label, reencode, get_model, device, batch_size,
              force, real=None) -> dict:
    spec = parse_reencode(reencode)
    set_name, parts, held = _image_parts(profile, images_dir, label, real)
    fold = any(from_folder for _, from_folder in parts)
    name = eval_name(checkpoint, set_name, spec)
    folder = eval_dir(profile, name)
    images = pd.concat([frame for frame, _ in parts], ignore_index=True)
    part_files = [[image_file(p) for p in frame["path"]] for frame, _ in parts]
    files = [f for chunk in part_files for f in chunk]
    settings = {
        **_checkpoint_stamp(checkpoint), "set": set_name, **held,
        "label": label, "reencode": list(spec) if spec else None, "threshold": THRESHOLD,
        "train_model": profile.train_model, "train_head": profile.train_head,
        "train_img_size": profile.train_img_size, "inputs": _fingerprint(files),
        "common_format": ({"image_size": profile.image_size, "store_format": profile.store_format,
                           "jpeg_quality": profile.jpeg_quality,
                           "jpeg_subsampling": profile.jpeg_subsampling} if fold else None),
    }
    if not force and (folder / "metrics.json").exists() and (folder / "predictions.csv").exists():
        old = load_result(profile, name)
        if old["settings"] == settings:
            print(f"evaluation {name}: {folder} (already computed for this checkpoint and these images)")
            return old | {"reused": True}

    prepared = [f for (_, from_folder), chunk in zip(parts, part_files) if not from_folder for f in chunk]
    _check_prepared(prepared)
    skipped: dict = {}
    model, started, probs = get_model(), time.perf_counter(), []
    for (_, from_folder), chunk in zip(parts, part_files):
        def transform(img, from_folder=from_folder):
            if from_folder:  # a user's files: first the study's common format, as both classes were
                img = common_format(img, profile)
            return reencode_image(img, spec) if spec else img

        probs.append(predict_images(model, chunk, profile.train_img_size,
                                    profile.train_head, device, batch_size,
                                    transform=transform if (from_folder or spec) else None,
                                    skipped=skipped, min_side=profile.min_side if from_folder else 1,
                                    max_pixels=profile.max_pixels, progress=True))
    probs = np.concatenate(probs)
    seconds = time.perf_counter() - started
    _check_prepared(prepared, skipped)
    ok = ~np.isnan(probs)
    if not ok.any():
        raise EvaluateError(f"none of the {len(files)} images of {images_dir or 'the test split'} could "
                            f"be read; first reasons: {list(skipped.values())[:3]}")
    speed = {"images": int(ok.sum()), "seconds": round(seconds, 3),
             "images_per_s": round(int(ok.sum()) / max(seconds, 1e-9), 2), "device": str(_device(device))}
    print(f"predicted {speed['images']} images in {seconds:.1f} s: {speed['images_per_s']:.1f} images/s "
          f"on {speed['device']}")
    predictions = pd.DataFrame({"path": images["path"][ok].tolist(), "label": images["label"][ok].tolist(),
                                "p_generated": probs[ok]})
    predictions["predicted"] = (predictions["p_generated"] >= THRESHOLD).astype(int)
    metrics = binary_metrics(predictions["label"], predictions["p_generated"], THRESHOLD)
    ci = bootstrap_ci(predictions["label"], predictions["p_generated"], _accuracy, n=1000, seed=0)
    skipped_rows = [{"file": str(f), "reason": r} for f, r in skipped.items()]
    if skipped:
        from .real_data import log_skipped
        log_skipped(profile, skipped, f"evaluate {name}")
    saved = {"name": name, "settings": settings, "metrics": metrics,
             "accuracy_ci95": {"low": ci["low"], "high": ci["high"], "method": "bootstrap, 1000 "
                               "resamples within each class, percentile"},
             "skipped": skipped_rows, "speed": speed}
    mf.write_csv(predictions, folder / "predictions.csv")
    atomic_write_text(folder / "metrics.json", json.dumps(saved, indent=2))
    return {"name": name, "dir": folder, "metrics": metrics, "accuracy_ci95": saved["accuracy_ci95"],
            "settings": settings, "skipped": skipped_rows, "predictions": predictions, "reused": False,
            "speed": speed}


def _check_prepared(files: list[Path], skipped: dict | None = None) -> None:
    """The study's own test images must all be scored: a damaged one stops the evaluation with the
    file and the command that re-makes it (a user's folder skips its bad files instead). Without
    ``skipped``, a cheap check of the files' headers; with it, the files the decoder refused."""
    from .dataset import DamagedImage, check_files, damaged_error, damaged_message

    try:
        if skipped is None:
            check_files(files)
        else:
            bad = [f for f in files if f in skipped]
            if bad:
                raise damaged_error(bad[0], skipped[bad[0]])
    except DamagedImage as exc:
        raise EvaluateError(f"{damaged_message(exc)}. Nothing was written for this evaluation.") from None


def _accuracy(y, p) -> float:
    return float(np.mean((np.asarray(p) >= THRESHOLD).astype(int) == np.asarray(y)))


def evaluate(profile, checkpoint=None, images_dir=None, label: str | None = None, reencode=None, *,
             real=None, model: str = backbones.DEFAULT, device=None, batch_size: int = 16,
             force: bool = False) -> dict:
    """Score the test split (or every image of ``images_dir``, all labelled ``label``, with the
    matched photographs ``real``: ``"test"`` or a folder) and write ``predictions.csv`` and
    ``metrics.json`` under ``results/<profile>/eval/<name>/``.

    ``model`` is one of Table 3's backbones (:mod:`helpers.backbones`); its run's ``best.pt`` is the
    default checkpoint. Returns ``name``, ``dir``, ``metrics``
    (:func:`helpers.metrics.binary_metrics`), ``accuracy_ci95``, ``settings``, ``skipped`` (files
    and reasons), ``predictions`` (a DataFrame), ``speed`` and ``reused`` (True when the files on
    disk already held this evaluation).
    """
    checkpoint = _checkpoint_path(profile, checkpoint, model)
    profile = backbones.for_model(profile, model)
    return _evaluate(profile, checkpoint, images_dir, label, reencode,
                     _cached_loader(profile, checkpoint), device, batch_size, force, real)


def two_class_metrics(result: dict) -> dict:
    """Balanced accuracy, ROC-AUC and AP of an evaluation, refused for a set of one class.

    A folder of generated images alone has one meaningful number, the share called generated
    (what the paper's 4.74% and 91.19% are); the others compare the two classes.
    """
    m = result["metrics"]
    if m["n_real"] == 0 or m["n_generated"] == 0:
        present = "generated" if m["n_generated"] else "real"
        raise EvaluateError(
            f"{result['name']} holds only {present} images: its accuracy ({m['accuracy']:.2%}) is the "
            f"share called {present}. Balanced accuracy, ROC-AUC and AP need both classes: evaluate "
            f"again with --real test (the study's real test photographs) or --real DIR (photographs "
            f"matched to these images)")
    return {k: m[k] for k in ("balanced_accuracy", "roc_auc", "average_precision", "accuracy_real",
                              "accuracy_generated", "n_real", "n_generated")}


def condition_label(spec) -> str:
    spec = parse_reencode(spec)
    if spec is None:
        return "unchanged"
    return f"JPEG q{spec[1]}" if spec[0] == "jpeg" else f"resized to {spec[1]} px and back"


def shortcut_table(profile, checkpoint=None, qualities=(95, 75, 50), sides=(256, 192), *,
                   model: str = backbones.DEFAULT, device=None, batch_size: int = 16) -> pd.DataFrame:
    """Accuracy and ROC-AUC on the test set unchanged and after each re-encoding of both classes.

    ``accuracy change`` is in percentage points against the unchanged set; ``mean |change of P|``
    is the average shift of P(generated) per image.
    """
    checkpoint = _checkpoint_path(profile, checkpoint, model)
    profile = backbones.for_model(profile, model)
    get_model = _cached_loader(profile, checkpoint)
    specs = [None] + [("jpeg", q) for q in qualities] + [("resize", s) for s in sides]
    rows, base = [], None
    for spec in specs:
        result = _evaluate(profile, checkpoint, None, None, spec, get_model, device, batch_size, False)
        m, pred = result["metrics"], result["predictions"].set_index("path")["p_generated"]
        base = pred if base is None else base
        shared = pred.index.intersection(base.index)
        rows.append({"condition": condition_label(spec), "accuracy": m["accuracy"], "roc_auc": m["roc_auc"],
                     "accuracy real": m["accuracy_real"], "accuracy generated": m["accuracy_generated"],
                     "mean |change of P|": float((pred[shared] - base[shared]).abs().mean()),
                     "images": m["n"], "evaluation": result["name"]})
    table = pd.DataFrame(rows).set_index("condition")
    table.insert(2, "accuracy change (points)", (table["accuracy"] - table["accuracy"].iloc[0]) * 100)
    return table


def metrics_table(results: Mapping[str, dict]) -> pd.DataFrame:
    """One row per evaluation (``{label: result}``): the headline metrics side by side."""
    cols = ["n_real", "n_generated", "accuracy", "balanced_accuracy", "roc_auc", "average_precision",
            "precision", "recall", "f1", "accuracy_real", "accuracy_generated", "note"]
    return pd.DataFrame({label: {c: r["metrics"].get(c) for c in cols} for label, r in results.items()}).T


def load_categories(csv_path) -> pd.DataFrame:
    """A user's CSV of ``file`` (a file name or path) and ``category`` (photo, artwork, ...)."""
    path = Path(csv_path).expanduser()
    try:
        table = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (OSError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise EvaluateError(f"cannot read the categories file {path} ({type(exc).__name__}: {exc}); "
                            f"give a CSV with the columns file,category") from None
    missing = {"file", "category"} - set(table.columns)
    if missing:
        raise EvaluateError(f"the categories file {path} lacks the column(s) {', '.join(sorted(missing))}; "
                            f"it needs file (an image's name) and category, e.g. 'img_001.png,artwork'")
    names = table["file"].map(lambda f: Path(f).name)
    if names.duplicated().any():
        raise EvaluateError(f"the categories file {path} names {names[names.duplicated()].iloc[0]!r} "
                            f"twice; give each image one category")
    return pd.DataFrame({"file": names, "category": table["category"].str.strip()})


def category_table(result: dict, categories) -> pd.DataFrame:
    """Per true class and category: images, share called generated, accuracy, mean P(generated).

    ``categories``: a CSV path or a frame from :func:`load_categories`, matched to the evaluation's
    images by file name; images the file does not name are counted under "(no category)".
    """
    cats = categories if isinstance(categories, pd.DataFrame) else load_categories(categories)
    pred = result["predictions"].assign(file=lambda f: f["path"].map(lambda p: Path(p).name))
    merged = pred.merge(cats, on="file", how="left")
    if merged["category"].isna().all():
        raise EvaluateError(f"no image of {result['name']} is named in the categories file: its file "
                            f"column must hold the images' file names (e.g. {pred['file'].iloc[0]!r})")
    merged["category"] = merged["category"].fillna("(no category)").replace("", "(no category)")
    merged["true class"] = merged["label"].map(LABEL_NAMES)
    merged["right"] = merged["predicted"] == merged["label"]
    table = merged.groupby(["true class", "category"]).agg(
        images=("file", "size"), called_generated=("predicted", "mean"), accuracy=("right", "mean"),
        mean_p_generated=("p_generated", "mean"))
    return table.rename(columns={"called_generated": "share called generated",
                                 "mean_p_generated": "mean P(generated)"})


# -- figures --------------------------------------------------------------------------------------

def confusion_figure(result: dict, title: str | None = None):
    """The confusion matrix as a heatmap: counts, and the share of each true class."""
    import seaborn as sns

    m = result["metrics"]
    counts = np.array([[m["tn"], m["fp"]], [m["fn"], m["tp"]]])
    rows = counts.sum(axis=1, keepdims=True)
    share = np.divide(counts, rows, out=np.full(counts.shape, np.nan), where=rows > 0)
    annot = [[f"{c}\n{s:.1%}" if not np.isnan(s) else f"{c}\n(none)" for c, s in zip(cr, sr)]
             for cr, sr in zip(counts, share)]
    fig, ax = plt.subplots(figsize=(4.4, 3.8))
    sns.heatmap(np.nan_to_num(share), annot=annot, fmt="", cmap="Blues", vmin=0, vmax=1, cbar=False,
                xticklabels=["real", "generated"], yticklabels=["real", "generated"], ax=ax,
                linewidths=1, linecolor="white", annot_kws={"fontsize": 11})
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title or f"{result['name']}: accuracy {m['accuracy']:.2%}", fontsize=10)
    fig.tight_layout()
    return fig


def roc_figure(results: Mapping[str, dict] | Iterable[dict], title: str = "ROC curves"):
    """ROC curves of several evaluations overlaid (``{label: result}`` or a list of results).

    A set of one class has no ROC curve; it is named in the legend as not shown.
    """
    items = results.items() if isinstance(results, Mapping) else ((r["name"], r) for r in results)
    fig, ax = plt.subplots(figsize=(4.8, 4.4))
    ax.plot([0, 1], [0, 1], color="grey", lw=1, ls="--", label="chance")
    for label, r in items:
        pred = r["predictions"]
        if pred["label"].nunique() < 2:
            ax.plot([], [], " ", label=f"{label}: one class only, no curve")
            continue
        pts = roc_points(pred["label"], pred["p_generated"])
        ax.plot(pts["fpr"], pts["tpr"], lw=1.6, label=f"{label} (AUC {r['metrics']['roc_auc']:.4f})")
    ax.set_xlim(-0.01, 1.01)
    ax.set_ylim(-0.01, 1.01)
    ax.set_xlabel("false positive rate (real called generated)")
    ax.set_ylabel("true positive rate (generated found)")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    return fig


def image_grid(rows: pd.DataFrame, cols: int, title: str, note: str | None = None):
    n = max(1, len(rows))
    cols = max(1, min(cols, n))
    nrows = -(-n // cols)
    fig, axes = plt.subplots(nrows, cols, figsize=(2.6 * cols, 3.0 * nrows), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    if rows.empty:
        axes[0, 0].text(0.5, 0.5, note or "nothing to show", ha="center", va="center", wrap=True)
    for ax, item in zip(axes.ravel(), rows.itertuples()):
        try:
            ax.imshow(load_rgb(image_file(item.path), min_side=1))
        except (BadImage, ValueError) as exc:
            ax.text(0.5, 0.5, f"cannot show:\n{exc}", ha="center", va="center", fontsize=7)
        right = int(item.predicted) == int(item.label)
        ax.set_title(f"true: {LABEL_NAMES[int(item.label)]}\nP(generated) = {item.p_generated:.3f}\n"
                     f"{'correct' if right else 'WRONG'}", fontsize=9, color="darkgreen" if right else "firebrick")
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    return fig


def _shown_as(result: dict) -> str:
    spec = result.get("settings", {}).get("reencode")
    return f" (shown as stored; the model saw them {condition_label(spec)})" if spec else ""


def prediction_grid(result: dict, n: int = 8, seed: int = 0, cols: int = 4):
    """Images with their true label, P(generated) and whether the prediction was right (the
    paper's Fig. 6): half real, half generated where the set has both, drawn with ``seed``."""
    pred = result["predictions"]
    per_class = [part.sample(min(len(part), -(-n // pred["label"].nunique())), random_state=seed)
                 for _, part in pred.groupby("label")]
    chosen = pd.concat(per_class).head(n)
    return image_grid(chosen, cols, f"{result['name']}: predictions{_shown_as(result)}")


def false_negative_grid(result: dict, n: int = 8, cols: int = 4, closest: bool = False):
    """Generated images the classifier called real, the most confident mistakes first (the
    paper's Figs. 7-8). With ``closest``, a set without such mistakes shows instead its generated
    images of lowest P(generated), the ones nearest to being called real, and says so."""
    pred = result["predictions"]
    generated = pred[pred["label"] == 1].sort_values("p_generated")
    wrong = generated[generated["predicted"] == 0].head(n)
    if wrong.empty and closest and not generated.empty:
        return image_grid(generated.head(n), cols, f"{result['name']}: no generated image was called real; "
                          f"the {min(n, len(generated))} nearest to it{_shown_as(result)}")
    return image_grid(wrong, cols, f"{result['name']}: generated images called real{_shown_as(result)}",
                      note="no false negatives: every generated image was called generated")


# -- the commands ---------------------------------------------------------------------------------

def add_parser(subparsers) -> None:
    """Register the ``evaluate`` and ``predict`` commands on ``python -m helpers``'s subparsers."""
    p = subparsers.add_parser("evaluate", help="score the test split (or a folder) with a trained "
                              "classifier: predictions.csv, metrics.json (Chapter 4)")
    add_profile_arguments(p, "train_img_size=224")
    p.add_argument("--model", choices=backbones.KEYS, default=backbones.DEFAULT,
                   help="the backbone of Table 3 whose run to evaluate (Chapter 5)")
    p.add_argument("--checkpoint", default=None, metavar="PATH",
                   help="the trained weights (default: results/<profile>/train/<run>/best.pt)")
    p.add_argument("--images", default=None, metavar="DIR",
                   help="score every image of this folder instead of the test split (needs --label)")
    p.add_argument("--label", choices=list(mf.LABELS), default=None,
                   help="the true class of every image of --images")
    p.add_argument("--real", default=None, metavar="test|DIR",
                   help="with --label generated: add matched photographs (the test split's, or a "
                        "folder) so that balanced accuracy, ROC-AUC and AP are defined")
    p.add_argument("--categories", default=None, metavar="CSV",
                   help="a CSV of file,category: the result broken down by category")
    p.add_argument("--reencode", default=None, metavar="jpeg:75|resize:256",
                   help="the shortcut check: re-encode both classes before prediction")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--force", action="store_true", help="predict again even if the results exist")

    p = subparsers.add_parser("predict", help="P(generated) for image files or folders of images")
    p.add_argument("paths", nargs="+", metavar="PATH", help="image files and/or folders of images")
    add_profile_arguments(p, "train_img_size=224")
    p.add_argument("--model", choices=backbones.KEYS, default=backbones.DEFAULT,
                   help="the backbone of Table 3 the checkpoint belongs to")
    p.add_argument("--checkpoint", default=None, metavar="PATH",
                   help="the trained weights (default: results/<profile>/train/<run>/best.pt)")
    p.add_argument("--csv", default=None, metavar="OUT", help="write the table here instead of printing it")
    p.add_argument("--as-is", action="store_true",
                   help="skip bringing the images to the study's common format (side, JPEG) first")
    p.add_argument("--batch-size", type=int, default=16)


def _expand(paths: Iterable[str]) -> list[Path]:
    """Files as given, folders as their files (not subfolders, no hidden files), in order."""
    out = []
    for text in paths:
        p = Path(text).expanduser()
        if p.is_dir():
            out += sorted(f for f in p.iterdir() if f.is_file() and not f.name.startswith("."))
        else:
            out.append(p)  # a missing file is reported by load_rgb with its reason
    return out


def predict_paths(profile, checkpoint, paths: Iterable[str], *, as_is: bool = False, device=None,
                  batch_size: int = 16, model: str = backbones.DEFAULT) -> pd.DataFrame:
    """One row per file: ``path``, ``p_generated``, ``predicted`` (label name) and ``reason`` (why a
    file could not be scored; empty otherwise)."""
    checkpoint = _checkpoint_path(profile, checkpoint, model)
    profile = backbones.for_model(profile, model)
    files = _expand(paths)
    if not files:
        raise EvaluateError("no files to score: the folders given are empty")
    skipped: dict = {}
    classifier = load_classifier(profile, checkpoint)
    started = time.perf_counter()
    probs = predict_images(classifier, files, profile.train_img_size, profile.train_head, device, batch_size,
                           transform=None if as_is else (lambda img: common_format(img, profile)),
                           skipped=skipped, min_side=profile.min_side, max_pixels=profile.max_pixels)
    scored = int((~np.isnan(probs)).sum())
    seconds = time.perf_counter() - started
    print(f"scored {scored} images in {seconds:.1f} s: {scored / max(seconds, 1e-9):.1f} images/s on "
          f"{_device(device)}", file=sys.stderr)
    return pd.DataFrame({
        "path": [str(f) for f in files],
        "p_generated": probs,
        "predicted": [("" if np.isnan(p) else LABEL_NAMES[int(p >= THRESHOLD)]) for p in probs],
        "reason": [_with_repair(f, skipped.get(f, "")) for f in files],
    })


def _with_repair(path: Path, reason: str) -> str:
    """A study image's reason, with the command that re-makes it."""
    from .dataset import repair_hint

    hint = repair_hint(path) if reason else None
    return f"{reason}; {hint}" if hint else reason


def _print_metrics(result: dict) -> None:
    m = result["metrics"]
    shown = {k: m[k] for k in ("n_real", "n_generated", "accuracy", "balanced_accuracy", "roc_auc",
                               "average_precision", "accuracy_real", "accuracy_generated", "tn", "fp",
                               "fn", "tp")}
    print(f"evaluation {result['name']}:")
    for k, v in shown.items():
        print(f"  {k:<20} {'-' if v is None else (f'{v:.4f}' if isinstance(v, float) else v)}")
    ci = result.get("accuracy_ci95")
    if ci:
        print(f"  accuracy 95% interval {ci['low']:.4f} .. {ci['high']:.4f} (bootstrap)")
    if m.get("note"):
        print(f"  note: {m['note']}")
    try:
        two_class_metrics(result)
    except EvaluateError as exc:
        print(f"  balanced accuracy, ROC-AUC, AP: refused. {exc}")
    print(f"files: {result['dir'] / 'predictions.csv'}, {result['dir'] / 'metrics.json'}")


def main(args: argparse.Namespace, profile) -> int:
    """Run the parsed ``evaluate`` or ``predict`` command for ``profile`` (``python -m helpers``
    prints the errors that say what to do); 1 when ``predict`` could score no file."""
    if args.command == "evaluate":
        categories = load_categories(args.categories) if args.categories else None
        result = evaluate(profile, args.checkpoint, args.images, args.label, args.reencode,
                          real=args.real, model=args.model, batch_size=args.batch_size,
                          force=args.force)
        _print_metrics(result)
        if categories is not None:
            table = category_table(result, categories)
            atomic_write_text(result["dir"] / "categories.csv", table.to_csv())
            print(table.to_string(float_format=lambda v: f"{v:.4f}"))
            print(f"file: {result['dir'] / 'categories.csv'}")
        return 0
    table = predict_paths(profile, args.checkpoint, args.paths, as_is=args.as_is,
                          batch_size=args.batch_size, model=args.model)
    bad = table[table["reason"] != ""]
    if args.csv:
        mf.write_csv(table, Path(args.csv))
        print(f"{len(table) - len(bad)} images scored: {args.csv}")
    else:
        good = table[table["reason"] == ""][["path", "p_generated", "predicted"]]
        print(good.to_string(index=False, float_format=lambda v: f"{v:.4f}") if len(good)
              else "no image could be scored")
    if len(bad):
        print(f"{len(bad)} not scored:", file=sys.stderr)
        for row in bad.itertuples():
            print(f"  {row.path}: {row.reason}", file=sys.stderr)
    return 0 if len(bad) < len(table) else 1
