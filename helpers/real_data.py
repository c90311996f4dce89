"""The ``data`` step: sample the splits, fetch the real photographs, bring them to the common format.

1. captions: COCO's caption files (downloaded once, checksum verified) or smoke's stand-in;
2. the plan: which COCO images are real samples, which captions become generated images;
3. the sampled photographs only, by id, in parallel, resumable, each verified by decoding it and
   comparing its size with the annotation;
4. preprocessing to the profile's side and format, bad files skipped with their reason logged;
5. the ``real`` part of the manifest.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pandas as pd
from tqdm import tqdm

from . import coco
from . import manifest as mf
from .download import DownloadError, Job, download_file, download_many
from .images import BadImage, convert_file, load_rgb, suffix
from .paths import coco_dir, data_root, profile_dir, relative_to_root
from .stamps import check_or_write
from .standins import build_standin_coco


class DataError(RuntimeError):
    """The data step could not finish; the message says what is missing and what to do."""


def format_settings(profile) -> dict:
    """What both classes share on disk: side, format, quality, chroma subsampling."""
    return dict(image_size=profile.image_size, store_format=profile.store_format,
                jpeg_quality=profile.jpeg_quality, jpeg_subsampling=profile.jpeg_subsampling)


def plan_paths(profile) -> tuple[Path, Path]:
    d = profile_dir(profile.name)
    return d / "plan_real.csv", d / "plan_generated.csv"


def ensure_captions(profile) -> Path:
    root = coco_dir(profile)
    if profile.real_source == "standin":
        need_train = profile.real_train + profile.real_val + profile.gen_train + profile.gen_val
        build_standin_coco(root, need_train, profile.real_test + profile.gen_test, seed=profile.seed)
        return root
    if all(coco.caption_path(root, s).exists() for s in coco.CAPTION_FILES):
        return root
    zip_path = root / coco.ANNOTATIONS_ZIP
    print(f"downloading COCO 2017 annotations (241 MB) to {zip_path}")
    try:
        download_file(coco.ANNOTATIONS_URL, zip_path, md5=coco.ANNOTATIONS_MD5,
                      retries=profile.download_retries, show_progress=True)
    except DownloadError as exc:
        raise DataError(
            f"{exc}\nAlternatively put captions_train2017.json and captions_val2017.json "
            f"(from that zip) in {root / 'annotations'}.") from None
    coco.extract_captions(zip_path, root)
    return root


def make_plans(profile) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Sample (seeded) and write both plans; the same profile always gives the same plans."""
    root = ensure_captions(profile)
    train = coco.load_captions(coco.caption_path(root, "train2017"))
    val = coco.load_captions(coco.caption_path(root, "val2017"))
    real, gen = coco.make_plan(profile, train, val)
    real_path, gen_path = plan_paths(profile)
    mf.write_csv(real, real_path)
    mf.write_csv(gen, gen_path)
    return real, gen


def raw_path(profile, row) -> Path:
    return coco_dir(profile) / row.coco_subset / row.file_name


def processed_path(profile, label_name: str, split: str, key: str) -> Path:
    return profile_dir(profile.name) / "images" / label_name / split / f"{key}{suffix(profile)}"


def _size_check(width: int, height: int, profile):
    def verify(path: Path) -> None:
        img = load_rgb(path, min_side=1, max_pixels=profile.max_pixels)
        if img.size != (width, height) and img.size != (height, width):
            raise BadImage(f"decoded size {img.size[0]}x{img.size[1]}, the annotation says {width}x{height}")
    return verify


def fetch_real(profile, plan: pd.DataFrame) -> dict[Path, str]:
    """Download the plan's photographs that are not on disk yet; ``{file: reason}`` of failures."""
    if profile.real_source == "standin":
        missing = [raw_path(profile, r) for r in plan.itertuples() if not raw_path(profile, r).exists()]
        return {p: f"stand-in file missing: delete {coco_dir(profile)} and run again" for p in missing}
    jobs = [Job(coco.IMAGE_URL.format(subset=r.coco_subset, file_name=r.file_name), raw_path(profile, r),
                verify=_size_check(r.width, r.height, profile)) for r in plan.itertuples()]
    return download_many(jobs, workers=profile.download_workers, retries=profile.download_retries,
                         desc="COCO photographs")


def convert_all(profile, items: list[tuple[Path, Path]], desc: str) -> dict[Path, str]:
    """Preprocess ``(source, target)`` pairs in threads; finished targets are skipped.

    Returns ``{source: reason}`` for the files that were skipped as bad input.
    """
    todo = [(s, t) for s, t in items if not t.exists()]
    skipped: dict[Path, str] = {}

    def one(pair):
        src, dst = pair
        try:
            convert_file(src, dst, profile)
        except BadImage as exc:
            return src, str(exc)
        return src, None

    with ThreadPoolExecutor(max_workers=min(8, (len(todo) or 1))) as pool:
        for src, reason in tqdm(pool.map(one, todo), total=len(todo), desc=desc, unit="img",
                                disable=not todo):
            if reason:
                skipped[src] = reason
    return skipped


def log_skipped(profile, skipped: dict[Path, str], step: str) -> Path:
    """Append the skipped files and their reasons to ``<data>/<profile>/skipped.csv``."""
    path = profile_dir(profile.name) / "skipped.csv"
    old = pd.read_csv(path, keep_default_na=False) if path.exists() else pd.DataFrame(
        columns=["step", "file", "reason"])
    new = pd.DataFrame([dict(step=step, file=str(f), reason=r) for f, r in skipped.items()],
                       columns=["step", "file", "reason"])
    both = pd.concat([old, new]).drop_duplicates(["step", "file"], keep="last")
    mf.write_csv(both, path)
    for f, r in skipped.items():
        print(f"skipped {f}: {r}")
    return path


def real_rows(profile, plan: pd.DataFrame) -> pd.DataFrame:
    rows = []
    root = data_root()
    for r in plan.itertuples():
        target = processed_path(profile, "real", r.split, f"{r.coco_id:012d}")
        if target.exists():
            rows.append(dict(path=relative_to_root(root, target), label=0, label_name="real",
                             split=r.split, source=f"coco-{r.coco_subset}"
                             if profile.real_source == "coco" else f"standin-{r.coco_subset}",
                             caption=r.caption, coco_id=r.coco_id, orig_width=r.width,
                             orig_height=r.height))
    return pd.DataFrame(rows)


def run(profile) -> pd.DataFrame:
    """The whole data step; returns the real part of the manifest."""
    print(profile.describe())
    check_or_write(profile_dir(profile.name) / "images" / "real" / "settings.json",
                   format_settings(profile) | {"real_source": profile.real_source, "seed": profile.seed},
                   "real images")
    real, gen = make_plans(profile)
    print(f"plan: {len(real)} real and {len(gen)} generated images "
          f"(written to {plan_paths(profile)[0].parent})")
    failures = fetch_real(profile, real)
    pairs = [(raw_path(profile, r), processed_path(profile, "real", r.split, f"{r.coco_id:012d}"))
             for r in real.itertuples() if raw_path(profile, r) not in failures]
    skipped = convert_all(profile, pairs, desc="real -> common format")
    if skipped:
        log_skipped(profile, skipped, "data")
    rows = real_rows(profile, real)
    path = mf.write_part(profile.name, "real", rows)
    print(f"{len(rows)} real images ready; manifest: {path}")
    if failures:
        first = "\n".join(f"  {f}: {r}" for f, r in list(failures.items())[:5])
        raise DataError(
            f"{len(failures)} of {len(real)} photographs could not be fetched; the {len(rows)} others "
            f"are kept. Run the same command again to retry. First failures:\n{first}\n"
            f"Offline: copy COCO's train2017/ and val2017/ folders into {coco_dir(profile)} "
            f"(only the planned files are read).")
    return rows
