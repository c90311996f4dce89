"""Chapter 6: the ``gradcam`` command: Chapter 4's model's Grad-CAM maps for the chapter's figure, and the object check.

``python -m helpers gradcam --profile P`` writes ``results/<profile>/gradcam/``:

- ``figure.npz`` (``maps``: each image's map at the target layer's resolution, unscaled) and
  ``figure.csv`` (group, path, from_folder, label, p_generated, empty, reason), for the chapter's grid. The
  groups, ``gradcam_count`` images each: the real and the generated test images; each other
  generator's images that Chapter 5's evaluation called real; each of Chapter 4's controls (its
  test rows, both classes in turn) and the augmentation probe. A group whose images are not there
  yet is listed in ``figure.json`` with the command that makes them, never an error;
- ``masses.csv``: one row per real test photograph whose COCO objects can be drawn: the objects'
  share of the area (what a uniform map puts on them) and the map's mass on them (empty when the
  map is zero everywhere), and ``masses.json``: whether the check is available (``smoke``'s
  stand-in photographs have no instance annotations: it says so), and the photographs left out,
  by reason.

Each part is stamped with the checkpoint, the images and the settings it was computed from
(``figure.json``, ``masses.json``); a rerun with the same stamp reads it back instead of
computing it again, and a new checkpoint or image computes it anew. The ConvNeXt needs a backward
pass per image: the batch is the training step's per-device batch (``train_micro_batch``).
"""

from __future__ import annotations

import io
import json
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from ..core.distributed import default_device
from ..core.files import atomic_write_bytes, atomic_write_text
from ..core.paths import results_root, shown
from ..data import controls as ctl
from ..data import manifest as mf
from ..data.coco import instances_path
from ..data.images import BadImage, load_rgb
from ..inpaint.masks import load_instances
from ..inpaint.step import EXTERNAL, external_folders
from .classifier import EvaluateError, checkpoint_path, lazy_classifier
from .controls_data import probe_rows
from .eval_files import checkpoint_stamp, eval_name, fingerprint, load_result
from .gradcam import GradCamError, annotation_index, distribution, grad_cams, object_region, object_share
from .image_sets import image_file, test_images
from .prediction import THRESHOLD
from .reencode import common_format
from .transform import model_input

FIGURE_COLUMNS = ["group", "path", "from_folder", "label", "p_generated", "empty", "reason"]
MASS_COLUMNS = ["path", "coco_id", "p_generated", "area_share", "object_mass", "empty"]
REAL, GENERATED, PROBE = "real test", "generated test", "probe: Algorithm 1 on real test"


def out_dir(profile) -> Path:
    return results_root(profile.name) / "gradcam"


def _rows(paths, labels, from_folder: bool) -> pd.DataFrame:
    return pd.DataFrame({"path": [str(p) for p in paths], "label": [int(v) for v in labels],
                         "from_folder": from_folder})


def _first(frame: pd.DataFrame, n: int) -> pd.DataFrame:
    """Up to ``n`` rows, the two classes in turn (real first) when both are there."""
    order = frame.assign(_k=frame.groupby("label").cumcount()).sort_values(["_k", "label"], kind="stable")
    return order.drop(columns="_k").head(n)


def test_groups(profile, n: int) -> dict[str, pd.DataFrame]:
    test = test_images(profile)
    return {name: _rows(part["path"].head(n), part["label"].head(n), False)
            for name, part in ((REAL, test[test.label == mf.LABELS["real"]]),
                               (GENERATED, test[test.label == mf.LABELS["generated"]]))}


def transfer_groups(profile, checkpoint, n: int) -> tuple[dict[str, pd.DataFrame], dict[str, str]]:
    """Each other generator's images that Chapter 5's evaluation (``evaluate --images FOLDER``) called
    real, in file order; a note for a generator not evaluated, or with none called real."""
    folders = external_folders(profile)
    groups = {}
    notes = {f"{name} called real": f"no {name} folder given: add one with --set {setting}=/path/to/images"
             for name, setting in EXTERNAL.items() if name not in folders}
    for name, folder in folders.items():
        group = f"{name} called real"
        try:
            result = load_result(profile, eval_name(checkpoint, folder.name))
        except EvaluateError:
            notes[group] = (f"not evaluated: run `python -m helpers evaluate --profile {profile.name} "
                            f"--images {shown(str(folder))} --label generated` (Chapter 5)")
            continue
        pred = result["predictions"]
        missed = pred[pred["p_generated"] < THRESHOLD]
        if missed.empty:
            notes[group] = f"none of its {len(pred)} images is called real"
            continue
        groups[group] = _rows(missed["path"].head(n), missed["label"].head(n), True)
    return groups, notes


def control_groups(profile, n: int) -> tuple[dict[str, pd.DataFrame], dict[str, str]]:
    """Test images each of Chapter 4's controls made (the classes it changed; the study's own images it
    keeps are in the test groups already), and the probe's augmented real test photographs."""
    groups, notes = {}, {}
    for name in ctl.control_list(profile):
        try:
            rows = ctl.load_rows(profile, name)
        except ctl.ControlError as exc:
            notes[f"control: {name}"] = str(exc)
            continue
        made = ctl.controls_dir(profile) / name  # the images the control changed, not the study's own
        rows = rows[[image_file(p).is_relative_to(made) for p in rows["path"]]]
        test = _first(rows[rows.split == "test"].reset_index(drop=True), n)
        groups[f"control: {name}"] = _rows(test["path"], test["label"], False)
    try:
        probe = probe_rows(profile).head(n)
        groups[PROBE] = _rows(probe["path"], probe["label"], False)
    except ctl.ControlError as exc:
        notes[PROBE] = str(exc)
    return groups, {k: shown(v) for k, v in notes.items()}


def figure_groups(profile, checkpoint) -> tuple[dict[str, pd.DataFrame], dict[str, str]]:
    """Every group of the figure (``path``, ``label``, ``from_folder``), and why a group is absent."""
    n = profile.gradcam_count
    transfer, transfer_notes = transfer_groups(profile, checkpoint, n)
    controls, control_notes = control_groups(profile, n)
    return test_groups(profile, n) | transfer | controls, transfer_notes | control_notes


def _reader(profile, model):
    """``(path, from_folder) -> model input``: a user's folder brought to the common format first,
    as the evaluation does; :class:`BadImage` for a file that cannot be read."""
    to_input = model_input(model, profile.train_img_size)

    def read(path: str, from_folder: bool) -> torch.Tensor:
        img = load_rgb(image_file(path), min_side=profile.min_side if from_folder else 1,
                       max_pixels=profile.max_pixels)
        return to_input(common_format(img, profile) if from_folder else img)
    return read


def batched_maps(profile, model, rows: pd.DataFrame) -> tuple[list, np.ndarray, list[str]]:
    """Each row's map (None for a file that cannot be read), P(generated), and the reason it was skipped."""
    read, batch = _reader(profile, model), max(1, profile.train_micro_batch)
    maps, probs, reasons = [None] * len(rows), np.full(len(rows), np.nan), [""] * len(rows)
    for start in range(0, len(rows), batch):
        good, inputs = [], []
        for i in range(start, min(start + batch, len(rows))):
            try:
                inputs.append(read(rows["path"].iloc[i], bool(rows["from_folder"].iloc[i])))
                good.append(i)
            except BadImage as exc:
                reasons[i] = str(exc)
        if good:
            batch_maps, p = grad_cams(model, torch.stack(inputs), profile.train_head)
            for k, i in enumerate(good):
                maps[i], probs[i] = batch_maps[k], p[k]
    return maps, probs, reasons


def _stamp(profile, checkpoint, files: list[Path], **extra) -> dict:
    """What a part was computed from: a rerun with the same stamp reads the part back."""
    return {**checkpoint_stamp(checkpoint), "train_model": profile.train_model, "train_head": profile.train_head,
            "train_img_size": profile.train_img_size, "image_size": profile.image_size,
            "inputs": fingerprint(files), **extra}


def _done(path: Path, stamp: dict) -> bool:
    return path.exists() and json.loads(path.read_text(encoding="utf-8")).get("settings") == stamp


def _save_npz(path: Path, **arrays) -> None:
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    atomic_write_bytes(path, buf.getvalue())


def figure_part(profile, checkpoint, get_model) -> Path:
    """``figure.npz``, ``figure.csv`` and ``figure.json`` (groups, notes, stamp); skipped when done."""
    groups, notes = figure_groups(profile, checkpoint)
    rows = pd.concat([g.assign(group=name) for name, g in groups.items()], ignore_index=True)
    stamp = _stamp(profile, checkpoint, [image_file(p) for p in rows["path"]], gradcam_count=profile.gradcam_count,
                   columns=FIGURE_COLUMNS)
    folder = out_dir(profile)
    if _done(folder / "figure.json", stamp):
        print("gradcam figure: already computed for this checkpoint and these images")
        return folder
    maps, probs, reasons = batched_maps(profile, get_model(), rows)
    shape = next((m.shape for m in maps if m is not None), (1, 1))
    stacked = np.stack([m if m is not None else np.zeros(shape, np.float32) for m in maps])
    table = rows.assign(p_generated=probs, reason=reasons,
                        empty=[m is None or not m.any() for m in maps])[FIGURE_COLUMNS]
    _save_npz(folder / "figure.npz", maps=stacked)
    mf.write_csv(table, folder / "figure.csv")
    atomic_write_text(folder / "figure.json", json.dumps(
        {"groups": list(groups), "notes": notes, "settings": stamp}, indent=2))
    print(f"gradcam figure: {len(table)} images in {len(groups)} groups; absent: {', '.join(notes) or 'none'}")
    return folder


def photographs(profile) -> pd.DataFrame:
    """The real test photographs with their COCO ids (``path``, ``coco_id``), from the manifest."""
    frame = mf.originals(mf.load(profile.name))
    real = frame[(frame.split == "test") & (frame.label == mf.LABELS["real"])]
    return real[["path", "coco_id"]].reset_index(drop=True)


def _unavailable(folder: Path, stamp: dict, reason: str, left_out: dict | None = None) -> dict:
    summary = {"available": False, "reason": reason, "left_out": left_out or {}, "settings": stamp}
    atomic_write_text(folder / "masses.json", json.dumps(summary, indent=2))
    print(f"gradcam object check: not available in profile {stamp['profile_name']}: {reason}")
    return summary


def _drawable(chunk: pd.DataFrame, index, side: int, left_out: Counter) -> list[tuple]:
    """``(photograph, object mask)`` of the photographs whose objects can be drawn; the others
    counted in ``left_out`` by reason."""
    out = []
    for photo in chunk.itertuples():
        mask, why = (object_region(index, int(photo.coco_id), side) if pd.notna(photo.coco_id)
                     else (None, "no COCO id in the manifest"))
        if mask is None:
            left_out[why] += 1
        else:
            out.append((photo, mask))
    return out


def _mass_row(photo, mask: np.ndarray, raw: np.ndarray, p: float, side: int) -> dict:
    dist = distribution(raw, side)
    return {"path": photo.path, "coco_id": int(photo.coco_id), "p_generated": float(p),
            "area_share": float(mask.mean()), "empty": dist is None,
            "object_mass": np.nan if dist is None else object_share(dist, mask)}


def _mass_rows(profile, model, photos: pd.DataFrame, index) -> tuple[list[dict], dict]:
    """One row per photograph with drawable objects; the others counted by reason."""
    side, step, rows, left_out = profile.image_size, max(1, profile.train_micro_batch), [], Counter()
    for start in range(0, len(photos), step):
        usable = _drawable(photos.iloc[start:start + step], index, side, left_out)
        batch = pd.DataFrame({"path": [photo.path for photo, _ in usable], "from_folder": False})
        maps, probs, reasons = batched_maps(profile, model, batch)
        for (photo, mask), raw, p, why in zip(usable, maps, probs, reasons):
            if raw is None:
                left_out[why] += 1
            else:
                rows.append(_mass_row(photo, mask, raw, p, side))
    return rows, dict(left_out)


def masses_part(profile, checkpoint, get_model) -> dict:
    """``masses.csv`` and ``masses.json``: the object check, or why it is not available."""
    folder, path = out_dir(profile), instances_path(profile)
    photos = photographs(profile)
    files = [image_file(p) for p in photos["path"]] + [path]
    stamp = _stamp(profile, checkpoint, files, profile_name=profile.name, columns=MASS_COLUMNS)
    if _done(folder / "masses.json", stamp):
        print("gradcam object check: already computed for this checkpoint and these images")
        return json.loads((folder / "masses.json").read_text(encoding="utf-8"))
    if not path.exists():
        return _unavailable(folder, stamp, f"{shown(str(path))} does not exist: the object check needs COCO's "
                            f"instance annotations of val2017 (the data step extracts them from "
                            f"annotations_trainval2017.zip); the smoke profile's stand-in photographs have "
                            f"captions but no instance annotations")
    rows, left_out = _mass_rows(profile, get_model(), photos, annotation_index(load_instances(path)))
    if not rows:
        return _unavailable(folder, stamp, f"none of the {len(photos)} real test photographs has annotated "
                            f"objects to draw", left_out)
    mf.write_csv(pd.DataFrame(rows, columns=MASS_COLUMNS), folder / "masses.csv")
    summary = {"available": True, "reason": "", "photographs": len(rows), "left_out": left_out, "settings": stamp}
    atomic_write_text(folder / "masses.json", json.dumps(summary, indent=2))
    print(f"gradcam object check: {len(rows)} photographs; left out: {left_out or 'none'}")
    return summary


def run(profile, checkpoint=None, device=None) -> Path:
    """The ``gradcam`` step: both parts with Chapter 4's model (its ``best.pt`` unless given)."""
    checkpoint = checkpoint_path(profile, checkpoint)
    load = lazy_classifier(profile, checkpoint)
    device = default_device(device)

    def get_model() -> torch.nn.Module:
        return load().to(device)
    figure_part(profile, checkpoint, get_model)
    masses_part(profile, checkpoint, get_model)
    print(f"gradcam: results in {shown(str(out_dir(profile)))}")
    return out_dir(profile)


def _missing(profile, path: Path) -> GradCamError:
    return GradCamError(f"{shown(str(path))} does not exist: run `python -m helpers gradcam --profile {profile.name}` "
                        f"(after Chapter 4's training and Chapter 5's transfer evaluations)")


def load_figure(profile) -> tuple[pd.DataFrame, np.ndarray, dict]:
    """The figure's table (``figure.csv``), its maps (row i of the table is map i) and
    ``figure.json`` (groups in order, notes of the absent ones)."""
    folder = out_dir(profile)
    for name in ("figure.json", "figure.csv", "figure.npz"):
        if not (folder / name).exists():
            raise _missing(profile, folder / name)
    table = pd.read_csv(folder / "figure.csv", dtype={"path": str, "reason": str}).fillna({"reason": ""})
    with np.load(folder / "figure.npz") as saved:
        maps = saved["maps"]
    if len(maps) != len(table):
        raise GradCamError(f"{shown(str(folder))}: figure.csv has {len(table)} rows but figure.npz {len(maps)} "
                           f"maps; run `python -m helpers gradcam --profile {profile.name}` again")
    return table, maps, json.loads((folder / "figure.json").read_text(encoding="utf-8"))


def load_masses(profile) -> tuple[dict, pd.DataFrame | None]:
    """``masses.json`` and, when the check was available, ``masses.csv``."""
    folder = out_dir(profile)
    if not (folder / "masses.json").exists():
        raise _missing(profile, folder / "masses.json")
    summary = json.loads((folder / "masses.json").read_text(encoding="utf-8"))
    if not summary["available"]:
        return summary, None
    if not (folder / "masses.csv").exists():
        raise _missing(profile, folder / "masses.csv")
    return summary, pd.read_csv(folder / "masses.csv", dtype={"path": str})
