"""Chapters 4-5: the ``evaluate`` step: a set of images scored by a trained classifier, and kept.

The test split (originals only) or every readable image of a folder (all of one label: the
paper's DALL-E 2 and Imagen transfer figures, with matched photographs if given) is scored, and
``predictions.csv`` and ``metrics.json`` are written under ``results/<profile>/eval/<name>/``
(:mod:`helpers.classify.eval_files`). A rerun with the same checkpoint file, images and settings
reads them back. The accuracy comes with a 95% bootstrap interval, resampled within each class,
so that 99.87% on 3,000 images is read with its uncertainty.
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd

from . import backbones
from ..core.distributed import default_device
from ..core.paths import shown
from ..data.real_data import log_skipped
from .classifier import EvaluateError, checkpoint_path, lazy_classifier
from .eval_files import checkpoint_stamp, eval_name, fingerprint, reusable, save_result
from .image_sets import Part, check_prepared, image_parts
from .metrics import binary_metrics, bootstrap_ci
from .prediction import THRESHOLD, predict_images
from .reencode import common_format, parse_reencode, reencode_image

# How images become the model's input (:mod:`helpers.classify.transform`), in the settings: results
# of the earlier fixed bilinear transform are predicted again rather than read back.
MODEL_INPUT = "timm data config of the model (filter, mean, std), as in training"


def evaluate(profile, checkpoint=None, images_dir=None, label: str | None = None, reencode=None, *,
             real=None, model: str = backbones.DEFAULT, device=None, batch_size: int = 16,
             force: bool = False) -> dict:
    """Score the test split (or every image of ``images_dir``, all labelled ``label``, with the
    matched photographs ``real``: ``"test"`` or a folder) and write ``predictions.csv`` and
    ``metrics.json`` under ``results/<profile>/eval/<name>/``.

    ``model`` is one of Table 3's backbones (:mod:`helpers.classify.backbones`); its run's ``best.pt`` is the
    default checkpoint. Returns ``name``, ``dir``, ``metrics``
    (:func:`helpers.classify.metrics.binary_metrics`), ``accuracy_ci95``, ``settings``, ``skipped`` (files
    and reasons), ``predictions`` (a DataFrame), ``speed`` and ``reused`` (True when the files on
    disk already held this evaluation).
    """
    checkpoint = checkpoint_path(profile, checkpoint, model)
    profile = backbones.for_model(profile, model)
    return _evaluate(profile, checkpoint, images_dir, label, reencode, lazy_classifier(profile, checkpoint),
                     device, batch_size, force, real)


def evaluate_conditions(profile, conditions, checkpoint=None, *, model: str = backbones.DEFAULT,
                        device=None, batch_size: int = 16) -> list[dict]:
    """The test split evaluated under each re-encoding of ``conditions`` (None: unchanged), one
    classifier loaded for all: the shortcut check of Chapter 4."""
    checkpoint = checkpoint_path(profile, checkpoint, model)
    profile = backbones.for_model(profile, model)
    get_model = lazy_classifier(profile, checkpoint)
    return [_evaluate(profile, checkpoint, None, None, spec, get_model, device, batch_size, False)
            for spec in conditions]


def _settings(profile, checkpoint, set_name: str, held: dict, label, spec, parts: list[Part]) -> dict:
    """Everything the result depends on: a rerun with the same settings reads the files back."""
    fold = any(part.from_folder for part in parts)
    return {
        **checkpoint_stamp(checkpoint), "set": set_name, **held,
        "label": label, "reencode": list(spec) if spec else None, "threshold": THRESHOLD,
        "train_model": profile.train_model, "train_head": profile.train_head,
        "train_img_size": profile.train_img_size, "model_input": MODEL_INPUT,
        "inputs": fingerprint([f for part in parts for f in part.files]),
        "common_format": ({"image_size": profile.image_size, "store_format": profile.store_format,
                           "jpeg_quality": profile.jpeg_quality,
                           "jpeg_subsampling": profile.jpeg_subsampling} if fold else None),
    }


def _evaluate(profile, checkpoint, images_dir, label, reencode, get_model, device, batch_size,
              force, real=None) -> dict:
    spec = parse_reencode(reencode)
    set_name, parts, held = image_parts(profile, images_dir, label, real)
    name = eval_name(checkpoint, set_name, spec)
    settings = _settings(profile, checkpoint, set_name, held, label, spec, parts)
    old = None if force else reusable(profile, name, settings)
    if old is not None:
        print(f"evaluation {name}: {shown(str(old['dir']))} (already computed for this checkpoint and these images)")
        return old | {"reused": True}
    prepared = [f for part in parts if not part.from_folder for f in part.files]
    check_prepared(prepared)
    skipped: dict = {}
    model, started = get_model(), time.perf_counter()
    probs = np.concatenate([_score(profile, part, spec, model, device, batch_size, skipped) for part in parts])
    seconds = time.perf_counter() - started
    check_prepared(prepared, skipped)
    ok = ~np.isnan(probs)
    if not ok.any():
        raise EvaluateError(f"none of the {len(probs)} images of {images_dir or 'the test split'} could "
                            f"be read; first reasons: {list(skipped.values())[:3]}")
    speed = _speed(int(ok.sum()), seconds, device)
    return save_scores(profile, name, settings, parts, probs, skipped, speed, f"evaluate {name}")


def save_scores(profile, name: str, settings: dict, parts: list, probs: np.ndarray, skipped: dict,
                speed: dict | None, step: str) -> dict:
    """One evaluation written from its images' P(generated): ``predictions.csv``, the metrics, and
    the files that could not be read (also logged for ``step``). ``evaluate`` and Chapter 6's probe
    both write their results this way, so the chapters read them alike."""
    predictions = _predictions(pd.concat([part.frame for part in parts], ignore_index=True), probs)
    if skipped:
        log_skipped(profile, skipped, step)
    saved = {"name": name, "settings": settings, **_summary(predictions),
             "skipped": [{"file": str(f), "reason": r} for f, r in skipped.items()],
             "speed": speed}
    return save_result(profile, saved, predictions)


def _score(profile, part: Part, spec, model, device, batch_size: int, skipped: dict) -> np.ndarray:
    """P(generated) of one part's files: a user's files first in the study's common format, as
    both classes were; then the re-encoding of the shortcut check, if any."""
    def reformat(img):
        if part.from_folder:
            img = common_format(img, profile)
        return reencode_image(img, spec) if spec else img

    return predict_images(model, part.files, profile.train_img_size, profile.train_head, device,
                          batch_size, reformat=reformat if (part.from_folder or spec) else None,
                          skipped=skipped, min_side=profile.min_side if part.from_folder else 1,
                          max_pixels=profile.max_pixels, progress=True)


def _predictions(images: pd.DataFrame, probs: np.ndarray) -> pd.DataFrame:
    """``predictions.csv``: the images that could be scored, their P(generated) and prediction."""
    ok = ~np.isnan(probs)
    predictions = pd.DataFrame({"path": images["path"][ok].tolist(), "label": images["label"][ok].tolist(),
                                "p_generated": probs[ok]})
    predictions["predicted"] = (predictions["p_generated"] >= THRESHOLD).astype(int)
    return predictions


def _summary(predictions: pd.DataFrame) -> dict:
    """The metrics, and the accuracy's 95% interval (bootstrap within each class)."""
    metrics = binary_metrics(predictions["label"], predictions["p_generated"], THRESHOLD)
    ci = bootstrap_ci(predictions["label"], predictions["p_generated"], _accuracy, n=1000, seed=0)
    return {"metrics": metrics,
            "accuracy_ci95": {"low": ci["low"], "high": ci["high"], "method": "bootstrap, 1000 "
                              "resamples within each class, percentile"}}


def _accuracy(y, p) -> float:
    return float(np.mean((np.asarray(p) >= THRESHOLD).astype(int) == np.asarray(y)))


def _speed(images: int, seconds: float, device) -> dict:
    """How fast the images were predicted, as recorded and printed."""
    speed = {"images": images, "seconds": round(seconds, 3),
             "images_per_s": round(images / max(seconds, 1e-9), 2), "device": str(default_device(device))}
    print(f"predicted {speed['images']} images in {seconds:.1f} s: {speed['images_per_s']:.1f} images/s "
          f"on {speed['device']}")
    return speed
