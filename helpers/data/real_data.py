"""Chapter 1: the ``data`` step -- sample the splits, fetch the real photographs, bring them to the
common format.

1. captions: COCO's caption files (downloaded once, checksum verified) or smoke's stand-in;
2. the plan: which COCO images are real samples, which captions become generated images;
3. the sampled photographs only, by id, in parallel, resumable, each verified by decoding it and
   comparing its size with the annotation;
4. preprocessing to the profile's side and format;
5. a photograph that the server does not have, or only corrupt after the retries, or that cannot
   be used (too small), is replaced by the next one of the plan's seeded reserve; the failure and
   the replacement are recorded in ``plan_real.csv`` (split ``failed``, column ``replaces``) and
   replayed by later runs, so that the counts are reached and every run ends with the same set;
6. the ``real`` part of the manifest.

A rerun checks what the earlier ones made: a prepared photograph that no longer decodes is made
again (its original fetched again when that is damaged too), and temporary files of writers that
were killed are removed.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pandas as pd
from tqdm import tqdm

from ..core.download import BadDownload, DownloadError, Job, download_file, download_many
from ..core.files import sweep_stale_tmp
from ..core.paths import coco_dir, data_root, profile_dir, relative_to_root
from ..core.stamps import check_or_write
from . import coco
from . import manifest as mf
from .images import BadImage, convert_file, find_damaged, load_rgb, suffix
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
    base = coco.base_url(profile)
    url = coco.annotations_url(base)
    official = base == coco.OFFICIAL_URL  # COCO's own server: its published md5, nothing else
    print(f"downloading COCO 2017 annotations{' (241 MB)' if official else ''} from {url} to {zip_path}")
    try:
        download_file(url, zip_path, md5=coco.ANNOTATIONS_MD5 if official else None,
                      verify=None if official else coco.mirror_zip_check(url),
                      retries=profile.download_retries, show_progress=True)
    except DownloadError as exc:
        raise DataError(
            f"{exc}\nAlternatively put captions_train2017.json and captions_val2017.json "
            f"(from that zip) in {root / 'annotations'}.") from None
    coco.extract_captions(zip_path, root)
    return root


def make_plans(profile) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Sample (seeded) both plans: (real and reserve rows as drawn, generated rows).

    The generated plan is written here; the real one (``plan_real.csv``) is written by :func:`run`
    once it knows which photographs failed and which reserve ones replace them.
    """
    root = ensure_captions(profile)
    train = coco.load_captions(coco.caption_path(root, "train2017"))
    val = coco.load_captions(coco.caption_path(root, "val2017"))
    real, gen, reserve = coco.plan_with_reserve(profile, train, val)
    mf.write_csv(gen, plan_paths(profile)[1])
    return pd.concat([real, reserve], ignore_index=True), gen


def recorded_failures(profile) -> dict[int, str]:
    """``{coco_id: reason}`` of the photographs an earlier run found missing or corrupt.

    A rerun replays them instead of fetching them again, so it ends with the same set.
    """
    path = plan_paths(profile)[0]
    old = pd.read_csv(path, keep_default_na=False) if path.exists() else pd.DataFrame()
    if "reason" not in old.columns:
        return {}
    failed = old[old["split"] == "failed"]
    return {int(i): str(r) for i, r in zip(failed["coco_id"], failed["reason"])}


def real_plan(drawn: pd.DataFrame, failed: dict[int, str]) -> pd.DataFrame:
    """The real plan with each failed photograph replaced by the next good reserve one of its subset.

    It depends only on the drawn rows and the set of failures, so a rerun that replays the
    failures gives the same plan. Failed rows stay, with split ``failed`` and their ``reason``; a
    promoted reserve row takes the split of the row it ``replaces`` (that row's coco_id) and
    follows it; unused reserve rows keep split ``reserve``.
    """
    drawn = drawn.assign(replaces="", reason="")
    reserve = drawn[drawn["split"] == "reserve"].to_dict("records")
    spare = {s: [r for r in reserve if r["coco_id"] not in failed and r["coco_subset"] == s]
             for s in coco.CAPTION_FILES}
    rows = []
    for row in drawn[drawn["split"] != "reserve"].to_dict("records"):
        rows += _replaced(row, failed, spare[row["coco_subset"]]) if row["coco_id"] in failed else [row]
    taken = {r["coco_id"] for r in rows}
    for row in reserve:
        if row["coco_id"] in failed:
            rows.append(row | dict(split="failed", reason=failed[row["coco_id"]]))
        elif row["coco_id"] not in taken:
            rows.append(row)
    return pd.DataFrame(rows, columns=list(drawn.columns))


def _replaced(row: dict, failed: dict[int, str], spare: list[dict]) -> list[dict]:
    """A failed row, and the next spare reserve row in its place (none when the reserve ran out)."""
    out = [row | dict(split="failed", reason=failed[row["coco_id"]])]
    if spare:
        out.append(spare.pop(0) | dict(split=row["split"], replaces=row["coco_id"]))
    return out


def active(plan: pd.DataFrame) -> pd.DataFrame:
    """The rows of the study itself (train, val, test), without failed and reserve rows."""
    return plan[plan["split"].isin(mf.SPLITS)]


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


def fetch_real(profile, plan: pd.DataFrame) -> dict[Path, DownloadError]:
    """Download the plan's photographs that are not on disk yet; ``{file: error}`` of failures
    (a :class:`BadDownload` when the server has no good copy, after the retries)."""
    if profile.real_source == "standin":
        missing = [raw_path(profile, r) for r in plan.itertuples() if not raw_path(profile, r).exists()]
        return {p: DownloadError(f"stand-in file missing: delete {coco_dir(profile)} and run again")
                for p in missing}
    base = coco.base_url(profile)
    jobs = [Job(coco.image_url(base, r.coco_subset, r.file_name), raw_path(profile, r),
                verify=_size_check(r.width, r.height, profile)) for r in plan.itertuples()]
    return download_many(jobs, workers=profile.download_workers, retries=profile.download_retries,
                         desc="COCO photographs")


def drop_damaged(files: list[Path]) -> None:
    """Delete the ones of ``files`` (those on disk) that no longer decode, so that they are made again."""
    for path, reason in find_damaged([f for f in files if f.exists()]).items():
        print(f"re-making {relative_to_root(data_root(), path)}: {reason}")
        path.unlink()


def remake_damaged(profile, plan: pd.DataFrame) -> None:
    """Delete prepared photographs that no longer decode, and damaged originals behind the ones to
    make, so that this run makes them again (re-downloading an original when it is damaged)."""
    targets = {processed_path(profile, "real", r.split, f"{r.coco_id:012d}"): r for r in plan.itertuples()}
    drop_damaged(list(targets))
    for target, r in targets.items():
        raw = raw_path(profile, r)
        if not target.exists() and raw.exists():
            try:
                _size_check(r.width, r.height, profile)(raw)
            except BadImage as exc:
                print(f"fetching {r.coco_subset}/{r.file_name} again: the copy on disk is damaged ({exc})")
                raw.unlink()


def fetch_and_convert(profile, plan: pd.DataFrame) -> tuple[dict[int, str], dict[Path, str]]:
    """Fetch and convert the plan's photographs not ready yet.

    Returns ``{coco_id: reason}`` of photographs the server has no good copy of (missing, corrupt,
    or unusable, such as too small), which reserve ones replace, and ``{file: reason}`` of the
    other failures (the network), which the next run tries again.
    """
    rows = {raw_path(profile, r): r for r in plan.itertuples()}
    failures = fetch_real(profile, plan)
    bad = {rows[p].coco_id: e.reason for p, e in failures.items() if isinstance(e, BadDownload)}
    other = {p: str(e) for p, e in failures.items() if not isinstance(e, BadDownload)}
    pairs = [(p, processed_path(profile, "real", r.split, f"{r.coco_id:012d}"))
             for p, r in rows.items() if p not in failures]
    skipped = convert_all(profile, pairs, desc="real -> common format")
    if skipped:
        log_skipped(profile, skipped, "data")
    return bad | {rows[p].coco_id: f"unusable ({reason})" for p, reason in skipped.items()}, other


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
    for r in active(plan).itertuples():
        target = processed_path(profile, "real", r.split, f"{r.coco_id:012d}")
        if target.exists():
            rows.append(dict(path=relative_to_root(root, target), label=0, label_name="real",
                             split=r.split, source=f"coco-{r.coco_subset}"
                             if profile.real_source == "coco" else f"standin-{r.coco_subset}",
                             caption=r.caption, coco_id=r.coco_id, orig_width=r.width,
                             orig_height=r.height, replaces=r.replaces))
    return pd.DataFrame(rows)


def sweep(*folders: Path) -> None:
    """Remove the temporary files that stopped writers left in ``folders`` (a resumed step)."""
    removed = [p for folder in folders for p in sweep_stale_tmp(folder)]
    if removed:
        print(f"removed {len(removed)} temporary file(s) left by stopped runs")


def prepare(profile, drawn: pd.DataFrame) -> tuple[pd.DataFrame, dict[Path, str]]:
    """Make every photograph of the plan, replacing the ones that fail by reserve ones until none
    fails; (the real plan, ``{file: reason}`` of network failures)."""
    failed = recorded_failures(profile)
    plan = real_plan(drawn, failed)
    remake_damaged(profile, active(plan))
    while True:
        bad, other = fetch_and_convert(profile, active(plan))
        if not bad:
            return plan, other
        failed |= bad
        plan = real_plan(drawn, failed)


def run(profile) -> pd.DataFrame:
    """The whole data step; returns the real part of the manifest."""
    print(profile.describe())
    check_or_write(profile_dir(profile.name) / "images" / "real" / "settings.json",
                   format_settings(profile) | {"real_source": profile.real_source, "seed": profile.seed},
                   "real images")
    sweep(profile_dir(profile.name), coco_dir(profile))
    drawn, gen = make_plans(profile)
    planned = int((drawn["split"] != "reserve").sum())
    print(f"plan: {planned} real and {len(gen)} generated images "
          f"(written to {plan_paths(profile)[0].parent})")
    plan, network = prepare(profile, drawn)
    mf.write_csv(plan, plan_paths(profile)[0])
    rows = real_rows(profile, plan)
    path = mf.write_part(profile.name, "real", rows)
    report_replacements(plan)
    print(f"{len(rows)} real images ready; manifest: {path}")
    if network:
        first = "\n".join(f"  {f}: {r}" for f, r in list(network.items())[:5])
        raise DataError(
            f"{len(network)} photographs are not on disk yet, for a reason that may pass (the network "
            f"after {profile.download_retries} retries, or a stand-in file missing); the {len(rows)} "
            f"others are ready. Run the same command again to resume. First ones:\n{first}\n"
            f"Offline: copy COCO's train2017/ and val2017/ folders into {coco_dir(profile)} "
            f"(only the planned files are read).")
    if len(active(plan)) < planned:
        raise reserve_ran_out(profile, plan, planned)
    return rows


def report_replacements(plan: pd.DataFrame) -> None:
    """One line on the planned photographs that reserve ones replace (there is nothing to do)."""
    failed = plan[plan["split"] == "failed"]
    if len(failed):
        print(f"note: {len(failed)} planned photograph(s) were missing or corrupt on the server and "
              f"are replaced by reserve ones (split 'failed' and column 'replaces' in plan_real.csv), "
              f"e.g. coco_id {failed['coco_id'].iloc[0]}: {failed['reason'].iloc[0]}")


def reserve_ran_out(profile, plan: pd.DataFrame, planned: int) -> DataError:
    missing = planned - len(active(plan))
    failed = int((plan["split"] == "failed").sum())
    return DataError(
        f"{missing} of {planned} photographs are missing: {failed} photographs were missing or corrupt "
        f"on {coco.base_url(profile)} and its reserve of replacements ran out (see the split 'failed' "
        f"of {plan_paths(profile)[0]}). The {planned - missing} others are ready. Use a complete COCO "
        f"mirror (--set coco_url=URL or $BOOK_COCO_URL), put the missing files into {coco_dir(profile)} "
        f"and delete plan_real.csv so that they are tried again, or lower the counts "
        f"(--set real_train=N ...).")
