"""Chapter 3: the inpaint step's scores -- of the fill, not only of the photograph around it.

``scores.csv``, one row per image, adds to the row's identity (model, set, index, key, original,
result, mask, hole_ratio, hole_kind) the columns :data:`SCORE_COLUMNS`:

- ``niqe_before``, ``niqe_after``: NIQE of the original and of the result, the same NIQE on the
  same device (:mod:`helpers.inpaint.niqe`); their difference is what the fill did;
- ``psnr_hole``, ``ssim_hole``: the fill against the original inside the hole
  (:mod:`helpers.inpaint.hole_scores`);
- ``lpips_hole``: LPIPS's per-pixel map averaged over the hole (:func:`helpers.inpaint.lpips.lpips_in_holes`,
  where the docstring says why the map over the hole and not the hole's box);
- ``sifid``, ``sifid_hole``: SIFID of the whole image and of the hole's bounding box, grown to at
  least :data:`helpers.inpaint.hole_scores.HOLE_BOX_MIN` px a side with the image's own pixels.

``fid.csv``, one row per set, has FID and the unbiased KID between the set's originals and its
results on the same Inception pool features (:data:`SET_SCORE_COLUMNS`). The hole of each row is
read back from the mask file the step wrote, so the scores describe the files on disk. An empty
hole scores NaN inside it.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd

from ..data.images import load_rgb
from . import fid, hole_scores, inception, niqe
from .lpips import lpips_in_holes

SCORE_COLUMNS = ("niqe_before", "niqe_after", "psnr_hole", "ssim_hole", "lpips_hole", "sifid", "sifid_hole")
SET_SCORE_COLUMNS = ("fid", "kid")


def scores_on_disk(folder: Path, scores: pd.DataFrame) -> pd.DataFrame | None:
    """The scores an earlier run wrote in ``folder`` for exactly these results and holes, or None
    (also when they lack ``hole_kind`` or a column of :data:`SCORE_COLUMNS` or
    :data:`SET_SCORE_COLUMNS`: an older run's)."""
    previous, fids = folder / "scores.csv", folder / "fid.csv"
    if not (previous.exists() and fids.exists()):
        return None
    old = pd.read_csv(previous)
    missing = [c for c in ("result", "mask", "hole_kind", *SCORE_COLUMNS) if c not in old.columns]
    missing += [c for c in SET_SCORE_COLUMNS if c not in pd.read_csv(fids, nrows=0).columns]
    if missing:
        print(f"scores: {previous} lacks {', '.join(missing)}; scoring again")
        return None
    if old["result"].tolist() != scores["result"].tolist() or old["mask"].tolist() != scores["mask"].tolist():
        return None
    print(f"scores: {previous} (already computed for these results)")
    return old


def score(profile, model: str, scores: pd.DataFrame, device) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The columns :data:`SCORE_COLUMNS` of each image (the module docstring), added to
    ``scores``, and FID and KID of each set (:func:`set_scores`)."""
    started = time.perf_counter()
    originals = [load_rgb(p, min_side=1) for p in scores.original]
    results = [load_rgb(p, min_side=1) for p in scores.result]
    holes = [hole_scores.read_hole(m, img.size[::-1]) for m, img in zip(scores["mask"], originals)]
    scores["niqe_before"] = niqe.niqe(originals, device=device)
    scores["niqe_after"] = niqe.niqe(results, device=device)
    inside = pd.DataFrame([hole_scores.scores_in_hole(o, r, h) for o, r, h in zip(originals, results, holes)],
                          index=scores.index, columns=["psnr_hole", "ssim_hole"])
    scores[["psnr_hole", "ssim_hole"]] = inside
    scores["lpips_hole"] = lpips_in_holes(originals, results, holes, device=device)
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
