"""Chapter 4: the ``controls`` step: the images of the training-time controls and of the augmentation probe.

``python -m helpers controls --profile P`` makes, for each control of the profile's ``controls``
setting, a manifest-like ``<data>/<profile>/controls/<name>/rows.csv`` (train, val and test rows;
an unchanged image is listed at its study path, a re-made one under ``controls/<name>/images``):

- ``compression-matched``: every generated image (Chapter 4's training set, augmented ones
  included, and val and test) is re-made from its lossless original, first JPEG-compressed at the
  quality measured on the raw COCO files (and their chroma subsampling), then brought to the
  common format; both classes then share one history: a COCO-like JPEG, the resize, q95;
- ``scale-matched``: both classes downscaled by one factor, the larger of the two classes' own
  (the real photographs' median and the generated images' fixed factor): the class with the
  smaller factor is re-made from its originals, scaled by the larger one and centre-cropped to the
  common side (in ``paper``: generated 768 px x 0.8 = 614 px, its centre 384 px kept);
- ``null``: real against real. The real photographs of each split are cut into two seeded halves;
  half A is scaled as photographs are (shorter side to the common side), half B by the generated
  images' factor, both from the raw COCO files and stored alike (:func:`helpers.data.controls.null_side`).

It also makes the probe's images: every real test photograph through Algorithm 1 (drawn as
Chapter 2 draws, with seeds of its own), from its raw file, then the common format.
``measured.json`` keeps what was measured. Finished images are skipped; every file is written whole.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image
from tqdm import tqdm

from ..augment import algorithm1
from ..augment import step as augment_step
from ..core.files import atomic_write_bytes, atomic_write_text, sweep_stale_tmp
from ..core.paths import data_root, inside, relative_to_root
from ..core.stamps import check_or_write
from ..data import controls as ctl
from ..data import manifest as mf
from ..data.images import BadImage, encode, load_rgb, preprocess, suffix
from ..data.real_data import plan_paths
from ..data.real_data import raw_path as real_raw
from .loaders import training_rows, validation_rows

PROBE = "probe"
COLUMNS = ["path", "label", "label_name", "split", "source", "coco_id", "origin", "factor", "aug_ops", "aug_params"]


class Job:
    """One image of a control: where it goes, and how it is made (``make() -> PIL image``)."""

    def __init__(self, target: Path, make):
        self.target, self.make = target, make


def _target(profile, name: str, label_name: str, split: str, stem: str) -> Path:
    return ctl.controls_dir(profile) / name / "images" / label_name / split / f"{stem}{suffix(profile)}"


def _load(path: Path, step: str, profile) -> Image.Image:
    """An original, or a :class:`ControlError` naming it and the step that makes it."""
    try:
        return load_rgb(path, min_side=1)
    except BadImage as exc:
        raise ctl.ControlError(f"the original {relative_to_root(data_root(), path)} cannot be read ({exc}): "
                               f"the controls are made from the originals that `python -m helpers {step} "
                               f"--profile {profile.name}` keeps; delete that step's prepared image of it and "
                               f"run the step again") from None


class Sources:
    """Where each image of the study comes from: lossless PNGs, Algorithm 1's plan, raw COCO files."""

    def __init__(self, profile, frame: pd.DataFrame):
        from ..data.generate import raw_path as generated_raw  # lazily: generate imports torch

        self.profile, self.generated_raw = profile, generated_raw
        plan = pd.read_csv(plan_paths(profile)[0], keep_default_na=False)
        self.plan = plan[plan.split != "failed"].drop_duplicates("coco_id").set_index("coco_id")
        has_aug = (frame.source == augment_step.SOURCE["generated"]).any()
        items = algorithm1.plan(profile, augment_step.sources(profile, frame, "generated"), "generated") \
            if has_aug else []
        self.augmented = {augment_step.output_path(profile, "generated", it["index"]).name: it for it in items}

    def real(self, row) -> Path:
        return real_raw(self.profile, self.plan.loc[int(row.coco_id)])

    def generated(self, row) -> Image.Image:
        """A generated image as the model made it (an augmented one: Algorithm 1 on that, again)."""
        name = Path(row.path).name
        if row.source == augment_step.SOURCE["generated"]:
            it = self.augmented[name]
            return algorithm1.apply(_load(Path(it["source"]["original"]), "generate", self.profile),
                                    it["params"], it["seed"])
        return _load(self.generated_raw(self.profile, row.split, Path(row.path).stem), "generate", self.profile)


def _row(row, path: str, factor: float, **extra) -> dict:
    return dict(path=path, label=int(row.label), label_name=row.label_name, split=row.split, source=row.source,
                coco_id=row.coco_id, origin=row.path, factor=round(float(factor), 6)) | extra


def study_rows(profile) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(the manifest, Chapter 4's rows: its training set, validation and test originals)."""
    frame = mf.load(profile.name)
    test = mf.originals(frame)
    test = test[test.split == "test"]
    return frame, pd.concat([training_rows(profile, frame), validation_rows(frame), test], ignore_index=True)


def factors(profile, rows: pd.DataFrame) -> dict:
    """Each class's downscale factor: the real photographs' median and the generated images' own."""
    real = rows[(rows.label == 0) & (rows.source != augment_step.SOURCE["real"])]
    own = [ctl.real_factor(w, h, profile.image_size) for w, h in zip(real.orig_width, real.orig_height)]
    return {"real_median": float(np.median(own)), "real_q1": float(np.percentile(own, 25)),
            "real_q3": float(np.percentile(own, 75)), "generated": ctl.generated_factor(profile)}


def measure(profile, rows: pd.DataFrame, sources: Sources) -> dict:
    """What the controls copy: COCO's compression and the two classes' factors (``measured.json``)."""
    real = rows[(rows.label == 0) & (rows.source != augment_step.SOURCE["real"])]
    measured = {"jpeg": ctl.measure_jpeg([sources.real(r) for r in real.itertuples()]),
                "factor": factors(profile, rows)}
    atomic_write_text(ctl.measured_path(profile), json.dumps(measured, indent=2))
    return measured


# -- the rows and images of each control ---------------------------------------------------------

def _bytes(profile, img: Image.Image) -> bytes:
    return encode(img, profile)


def compression_matched(profile, rows: pd.DataFrame, sources: Sources, measured: dict):
    """Generated images re-made with a COCO-like JPEG before the resize; photographs unchanged."""
    q, sampling, side = measured["jpeg"]["quality_median"], measured["jpeg"]["subsampling"], profile.image_size
    out, jobs = [], []
    for row in rows.itertuples():
        if row.label == 0:
            out.append(_row(row, row.path, ctl.real_factor(row.orig_width, row.orig_height, side)))
            continue
        target = _target(profile, "compression-matched", "generated", row.split, Path(row.path).stem)
        jobs.append(Job(target, lambda r=row: _bytes(profile, preprocess(
            ctl.jpeg_round_trip(sources.generated(r), q, sampling), side))))
        out.append(_row(row, relative_to_root(data_root(), target), ctl.generated_factor(profile)))
    return out, jobs


def scale_matched(profile, rows: pd.DataFrame, sources: Sources, measured: dict):
    """The class with the smaller factor re-made at the larger one (scaled, centre-cropped)."""
    side, g = profile.image_size, measured["factor"]["generated"]
    common = max(measured["factor"]["real_median"], g)
    remake = 1 if g < common else 0  # the label of the class that is re-made
    out, jobs = [], []
    for row in rows.itertuples():
        own = g if row.label == 1 else ctl.real_factor(row.orig_width, row.orig_height, side)
        if row.label != remake:
            out.append(_row(row, row.path, own))
            continue
        target = _target(profile, "scale-matched", row.label_name, row.split, Path(row.path).stem)
        load = (lambda r=row: sources.generated(r)) if remake else (lambda r=row: _load(sources.real(r), "data", profile))
        jobs.append(Job(target, lambda f=load: _bytes(profile, ctl.rescale(f(), common, side)[0])))
        out.append(_row(row, relative_to_root(data_root(), target), max(common, own)))
    return out, jobs


def null_halves(profile, rows: pd.DataFrame, sources: Sources, measured: dict):
    """Real photographs only, each split cut into two seeded halves: A (label 0) scaled as
    photographs are, B (label 1) by the generated factor; both from the raw files, stored alike."""
    g, out, jobs = measured["factor"]["generated"], [], []
    photos = rows[(rows.label == 0) & (rows.source != augment_step.SOURCE["real"])]
    for split, part in photos.groupby("split", sort=False):
        part = part.sort_values("path").reset_index(drop=True)
        order = np.random.default_rng([profile.seed, len(part), mf.SPLITS.index(split)]).permutation(len(part))
        for rank, row in enumerate(part.iloc[order].itertuples()):
            half = int(rank >= len(part) // 2)
            s = ctl.null_side(row.orig_width, row.orig_height, profile)
            factor = g if half else ctl.real_factor(row.orig_width, row.orig_height, profile.image_size)
            name = ("real", "generated")[half]
            target = _target(profile, "null", name, split, Path(row.path).stem)
            jobs.append(Job(target, lambda r=row, f=factor, s=s: _bytes(
                profile, ctl.rescale(_load(sources.real(r), "data", profile), f, s)[0])))
            out.append(_row(row, relative_to_root(data_root(), target), factor, label=half, label_name=name,
                            source=f"null-{'AB'[half]}"))
    return out, jobs


def probe(profile, rows: pd.DataFrame, sources: Sources, measured: dict):
    """Every real test photograph through Algorithm 1, from its raw file, then the common format."""
    test = rows[(rows.label == 0) & (rows.split == "test")].sort_values("path")
    out, jobs = [], []
    for i, row in enumerate(test.itertuples()):
        seed = algorithm1.aug_seed(profile.seed, PROBE, i)
        params = algorithm1.draw(np.random.default_rng(seed), profile.augment)
        target = _target(profile, PROBE, "real", "test", Path(row.path).stem)
        jobs.append(Job(target, lambda r=row, p=params, s=seed: _bytes(profile, preprocess(
            algorithm1.apply(_load(sources.real(r), "data", profile), p, s), profile.image_size))))
        out.append(_row(row, relative_to_root(data_root(), target),
                        ctl.real_factor(row.orig_width, row.orig_height, profile.image_size),
                        aug_ops="+".join(params["ops"]),
                        aug_params=json.dumps({k: round(v, 6) for k, v in params.items() if k != "ops"})))
    return out, jobs


MAKERS = {"compression-matched": compression_matched, "scale-matched": scale_matched, "null": null_halves,
          PROBE: probe}


def settings(profile, name: str, measured: dict) -> dict:
    """What a control's images depend on: made again only after its folder is deleted."""
    common = dict(image_size=profile.image_size, store_format=profile.store_format,
                  jpeg_quality=profile.jpeg_quality, jpeg_subsampling=profile.jpeg_subsampling,
                  seed=profile.seed, sd_resolution=profile.sd_resolution)
    if name == "compression-matched":
        return common | {"first_jpeg": [measured["jpeg"]["quality_median"], measured["jpeg"]["subsampling"]]}
    if name == "scale-matched":
        return common | {"factors": measured["factor"]}
    return common


def make(jobs: list[Job], desc: str) -> int:
    """Make the jobs whose file is not on disk yet, in threads; how many were made."""
    todo = [j for j in jobs if not j.target.exists()]

    def one(job: Job) -> None:
        atomic_write_bytes(job.target, job.make())

    with ThreadPoolExecutor(max_workers=max(1, min(8, len(todo)))) as pool:
        list(tqdm(pool.map(one, todo), total=len(todo), desc=desc, unit="img", disable=not todo))
    return len(todo)


def write_rows(profile, name: str, rows: list[dict]) -> Path:
    frame = pd.DataFrame(rows).reindex(columns=COLUMNS)
    path = ctl.controls_dir(profile) / name / "rows.csv"
    mf.validate(frame, root=data_root(), check_files=True, where=str(path))
    mf.write_csv(frame, path)
    return path


def run(profile) -> dict:
    """The whole step: measure, then each control of the profile (and the probe), resumable."""
    sweep_stale_tmp(ctl.controls_dir(profile))
    frame, rows = study_rows(profile)
    sources = Sources(profile, frame)
    measured = measure(profile, rows, sources)
    j, f = measured["jpeg"], measured["factor"]
    print(f"raw photographs: median JPEG quality {j['quality_median']} (quartiles {j['quality_q1']:g}-"
          f"{j['quality_q3']:g}; {j['standard_tables']} of {j['jpeg_files']} with standard tables), "
          f"{j['subsampling']}; factors: real median {f['real_median']:.3f}, generated {f['generated']:.3f}")
    for name in [*ctl.control_list(profile), PROBE]:
        check_or_write(ctl.controls_dir(profile) / name / "settings.json", settings(profile, name, measured),
                       f"images of the control '{name}'")
        out, jobs = MAKERS[name](profile, rows, sources, measured)
        made = make(jobs, name)
        path = write_rows(profile, name, out)
        print(f"{name}: {len(out)} rows, {len(jobs)} images re-made ({made} now); {relative_to_root(data_root(), path)}")
    return measured


def probe_rows(profile) -> pd.DataFrame:
    """The probe's rows (augmented real test photographs, ``origin`` the stored photograph)."""
    path = ctl.controls_dir(profile) / PROBE / "rows.csv"
    if not path.exists():
        raise ctl.ControlError(f"{path} does not exist: run `python -m helpers controls --profile {profile.name}`")
    frame = pd.read_csv(path, keep_default_na=False)
    for rel in frame.path:
        if not inside(data_root(), rel).is_file():
            raise ctl.ControlError(f"{rel} is missing: `python -m helpers controls --profile {profile.name}` "
                                   f"makes it again")
    return frame
