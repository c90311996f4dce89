"""Chapters 1-6, the results page: one table per chapter, every number the chapter wrote next to the paper's.

Everything here *reads* what the chapters' commands wrote (``results/<profile>/`` and the
manifest under the data root); nothing is trained, scored or recomputed. A piece a profile has not
produced yet is shown as ``"not run yet"``, never guessed. Every paper value comes from
:mod:`helpers.core.paper`.

Each reader returns a table with the columns ``quantity``, ``ours`` (this book's run of the
profile), ``paper`` (as the paper prints it, or ``"not reported"``) and ``note``.
"""

from __future__ import annotations

import importlib
import math
import numbers

import pandas as pd

from ..augment import PARTS, SOURCE
from ..core import paper
from ..core.paths import results_root
from ..core.profiles import Profile
from ..data import manifest as mf
from .ch4_train import load_metrics
from .ch1_data import counts_with_paper
from .chapter import load_bench

NOT_RUN = "not run yet"
NOT_REPORTED = "not reported"
NO_MATCHED_REAL = "no matched real images"
NOT_EVALUATED = "Chapter 5 has not evaluated this one yet"
COLUMNS = ["quantity", "ours", "paper", "note"]
PAPER_MODEL = "ConvNeXt-XL"  # the paper's classifier, Table 3's last row
# Table 3's columns, in the order of the tuples of paper.TABLE3
TABLE3_METRICS = ("accuracy", "F1", "ROC-AUC")
# helpers.book.ch5_transfer.summary's columns (ours) and the paper's number where it reports one
TRANSFER_ROWS = (("images", "images", None),
                 ("accuracy on generated images", "accuracy on generated (ours)", paper.TRANSFER_ACCURACY),
                 ("real test photographs added", "real test photographs added", None),
                 ("balanced accuracy, with matched real images", "balanced accuracy (ours)", None),
                 ("ROC-AUC, with matched real images", "ROC-AUC (ours)", None),
                 ("average precision, with matched real images", "AP (ours)", None))


def plain_number(value):
    """A plain Python int or float (glue and the tables need no numpy types); None for a gap."""
    if value is None or isinstance(value, bool) or not isinstance(value, numbers.Number):
        return None
    if isinstance(value, numbers.Integral):
        return int(value)
    value = float(value)
    return None if math.isnan(value) else value


def _row(quantity: str, ours, reported=None, note: str = "") -> dict:
    return {"quantity": quantity, "ours": ours,
            "paper": NOT_REPORTED if reported is None else reported, "note": note}


def _frame(rows: list[dict]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=COLUMNS, dtype=object)  # ints stay ints beside floats


# -- Chapters 1 and 2: the images --------------------------------------------------------------------

def data_counts(profile: Profile) -> pd.DataFrame:
    """Chapters 1 and 2: images per class and split in the manifest, and the augmented training
    images, next to the paper's counts (section 5.1)."""
    try:
        frame = mf.load(profile.name, check_files=False)
    except mf.ManifestError as exc:
        frame, why = None, str(exc)
    counts = counts_with_paper(frame, profile) if frame is not None else None
    rows = []
    for label in mf.LABELS:
        for split in mf.SPLITS:
            planned = (profile.real_counts if label == "real" else profile.gen_counts)[split]
            ours = NOT_RUN if counts is None else int(counts.loc[(label, split), f"ours ({profile.name})"])
            note = f"the profile plans {planned:,}" if counts is not None else why
            rows.append(_row(f"{label} images, {split}", ours, paper.COUNTS[label][split], note))
    for label, reported, note in (("generated", paper.AUGMENTED_TRAIN, "Algorithm 1, generated class only"),
                                  ("real", None, "the control of Chapter 4; the paper has none")):
        done = frame is not None and mf.part_path(profile.name, PARTS[label]).exists()
        ours = int(((frame.split == "train") & (frame.source == SOURCE[label])).sum()) if done else NOT_RUN
        rows.append(_row(f"augmented {label} images, train", ours, reported, note))
    return _frame(rows)


# -- Chapter 3: inpainting, Table 2 ----------------------------------------------------------------

def inpaint_models(profile: Profile) -> list[str]:
    """The profile's inpainting models, then any other model with scores under ``inpaint/``."""
    folder = results_root(profile.name) / "inpaint"
    found = sorted(p.parent.name for p in folder.glob("*/scores.csv")) if folder.is_dir() else []
    return list(dict.fromkeys(profile.inpaint_model_list + found))


def table2_averages(profile: Profile) -> pd.DataFrame:
    """Chapter 3 (Table 2): per model and set, mean NIQE of the inpainted results (``niqe_after``;
    an older ``scores.csv``'s ``niqe``) and SIFID of the first images (as many as the paper's 10)
    and the set's FID, next to the paper's printed averages. The paper's column is a per-image
    "FID"; SIFID is the per-image score that is defined (Chapter 3 explains)."""
    from .ch3_inpaint import PAPER_N, load_scores, skipped, table2

    rows = []
    for model in inpaint_models(profile):
        reason = skipped(profile, [model]).get(model)
        if reason:
            rows.append(_row(f"{model}: Table 2 scores", "skipped", None, reason))
            continue
        try:
            ours = table2(profile, [model]).loc[model]
            weights = load_scores(profile, model)[1].set_index("set")["inception_weights"]
        except FileNotFoundError:
            rows.append(_row(f"{model}: Table 2 scores", NOT_RUN, None,
                             f"python -m helpers inpaint --profile {profile.name} --model {model}"))
            continue
        for set_name, r in ours.iterrows():
            fid_avg, niqe_avg = paper.TABLE2_AVERAGE.get(set_name, (None, None))
            head = f"{model}, {set_name}:"
            rows += [
                _row(f"{head} NIQE, mean of first {PAPER_N}", plain_number(r[f"NIQE, first {PAPER_N}"]), niqe_avg,
                     f"{int(r['images'])} images scored"),
                _row(f"{head} SIFID, mean of first {PAPER_N}", plain_number(r[f"SIFID, first {PAPER_N}"]), fid_avg,
                     "the paper's number is its per-image 'FID'"),
                _row(f"{head} FID of the set", plain_number(r["FID of the set"]), None,
                     f"all {int(r['images'])} images; Inception weights: {weights.get(set_name, '?')}"),
            ]
    return _frame(rows)


# -- Chapter 4: the classifier ---------------------------------------------------------------------

def classifier_eval_name(profile: Profile) -> str:
    """The evaluation Chapter 4 writes for the paper's recipe on the test split (``paper-best_test``)."""
    from ..classify import default_checkpoint, eval_name  # torch

    return eval_name(default_checkpoint(profile), "test")


def classifier_metrics(profile: Profile) -> pd.DataFrame:
    """Chapter 4: test accuracy, F1 and ROC-AUC of the paper's recipe, next to the paper's
    ConvNeXt-XL (accuracy section 5.3; F1 and ROC-AUC Table 3), and what the paper leaves out."""
    from ..classify import EvaluateError, load_result  # torch

    _, f1, auc = paper.TABLE3[PAPER_MODEL]
    wanted = (("test accuracy", "accuracy", paper.TEST_ACCURACY), ("test F1", "f1", f1),
              ("test ROC-AUC", "roc_auc", auc), ("test balanced accuracy", "balanced_accuracy", None),
              ("accuracy on real test images", "accuracy_real", None),
              ("accuracy on generated test images", "accuracy_generated", None))
    try:
        result = load_result(profile, classifier_eval_name(profile))
    except EvaluateError as exc:
        return _frame([_row(q, NOT_RUN, reported, str(exc)) for q, _, reported in wanted])
    m, ci = result["metrics"], result.get("accuracy_ci95") or {}
    model = f"{result['settings'].get('train_model', '?')} on {m['n']} test images"
    interval = f"; 95% interval {ci['low']:.4f} to {ci['high']:.4f}" if ci.get("low") is not None else ""
    rows = []
    for quantity, key, reported in wanted:
        ours = plain_number(m.get(key))
        rows.append(_row(quantity, (m.get("note") or "n/a") if ours is None else ours, reported,
                         model + (interval if key == "accuracy" else "")))
    return _frame(rows)


def paper_images_per_second() -> float:
    """The paper's training speed, derived: its training images (real, generated and augmented)
    in one epoch of ``EPOCH_MINUTES``."""
    images = paper.COUNTS["real"]["train"] + paper.COUNTS["generated"]["train"] + paper.AUGMENTED_TRAIN
    return images / (paper.EPOCH_MINUTES * 60)


def training_speed(profile: Profile) -> pd.DataFrame:
    """Chapter 4: minutes per epoch and images per second of our training (``metrics.csv``) and of
    ``bench train``, next to the paper's 60 minutes per epoch on two RTX 2080 Ti."""
    rate_note = "the paper's: derived, its training images per epoch time"
    try:
        m = load_metrics(profile)
        rows = [_row("minutes per epoch", float(m["seconds"].mean() / 60), paper.EPOCH_MINUTES,
                     f"mean of {len(m)} epochs, this profile's training set and model"),
                _row("training images per second", float(m["images_per_s"].mean()), paper_images_per_second(),
                     rate_note)]
    except FileNotFoundError as exc:
        rows = [_row("minutes per epoch", NOT_RUN, paper.EPOCH_MINUTES, str(exc)),
                _row("training images per second", NOT_RUN, paper_images_per_second(), rate_note)]
    rows.append(_bench_row(profile, load_bench(profile, "train")))
    return _frame(rows)


def _bench_row(profile: Profile, bench: dict | None) -> dict:
    """``bench train``'s images per second (and MFU on a GPU), or the command that measures it."""
    quantity = "training images per second, bench train"
    if bench is None:
        return _row(quantity, NOT_RUN, paper_images_per_second(),
                    f"python -m helpers bench train --profile {profile.name}")
    mfu = f", MFU {bench['mfu']:.1%}" if bench.get("mfu") else ""
    return _row(quantity, plain_number(bench["images_per_s"]), paper_images_per_second(),
                f"{bench['what']} on {bench['device']}{mfu}")


def evaluations(profile: Profile) -> pd.DataFrame:
    """Every finished evaluation under ``results/<profile>/eval/`` (the test split, the shortcut
    checks, the control, folders of other generators), one row each."""
    from ..classify import EvaluateError, load_result  # torch

    rows = []
    for metrics_file in sorted((results_root(profile.name) / "eval").glob("*/metrics.json")):
        try:
            result = load_result(profile, metrics_file.parent.name)
        except EvaluateError:
            continue
        m = result["metrics"]
        rows.append({"evaluation": result["name"], "images": m["n"], "accuracy": m["accuracy"],
                     "F1": m.get("f1"), "ROC-AUC": m.get("roc_auc"),
                     "balanced accuracy": m.get("balanced_accuracy"), "note": m.get("note") or ""})
    return pd.DataFrame(rows, columns=["evaluation", "images", "accuracy", "F1", "ROC-AUC",
                                       "balanced accuracy", "note"])


# -- Chapter 5: ablation and transfer --------------------------------------------------------------

def _chapter_table(module: str, function: str, profile: Profile) -> tuple[pd.DataFrame | None, str]:
    """``helpers.book.<module>.<function>(profile)`` (a chapter's own table), or None and why when
    that piece is missing: the page renders before that chapter has run, or without it."""
    from ..classify import EvaluateError  # torch (a ProbeError is one)
    from ..classify.gradcam import GradCamError

    try:
        fn = getattr(importlib.import_module(f".{module}", __package__), function)
    except (ImportError, AttributeError) as exc:
        return None, f"{__package__}.{module}.{function} is not available ({exc})"
    try:
        frame = fn(profile)
    except (FileNotFoundError, EvaluateError, GradCamError, mf.ManifestError) as exc:
        return None, str(exc)
    if frame is None or frame.empty:
        return None, "nothing evaluated yet"
    return frame, ""


def table3(profile: Profile) -> pd.DataFrame:
    """Chapter 5 (Table 3): accuracy, F1 and ROC-AUC per backbone, ours next to the paper's."""
    frame, why = _chapter_table("ch5_ablation", "table3", profile)
    rows = []
    for model, reported in paper.TABLE3.items():
        have = frame is not None and model in frame.index
        note = _table3_note(frame.loc[model]) if have else why or NOT_EVALUATED
        for metric, value in zip(TABLE3_METRICS, reported):
            ours = plain_number(frame.loc[model, f"{metric} (ours)"]) if have else NOT_RUN
            rows.append(_row(f"{model}: {metric}", ours, value, note))
    return _frame(rows)


def _table3_note(row: pd.Series) -> str:
    """What one of our Table 3 numbers is: a mean over seeds, at one input size, at a learning rate
    chosen on validation (Chapter 5)."""
    if "seeds" not in row:
        return ""
    return (f"mean over {row['seeds']} seeds, {row['input (px)']} px, learning rate "
            f"{row['learning rate (chosen)']:g} chosen on validation loss")


def transfer(profile: Profile) -> pd.DataFrame:
    """Chapter 5 (section 6): the classifier on DALL-E 2 and Imagen images; the paper reports the
    accuracy on generated images alone, we add the metrics that need matched real images."""
    frame, why = _chapter_table("ch5_transfer", "summary", profile)
    rows = []
    for generator in paper.TRANSFER_ACCURACY:
        have = frame is not None and generator in frame.index
        for quantity, column, reported in TRANSFER_ROWS:
            if not have:
                ours = NOT_RUN
            else:
                ours = plain_number(frame.loc[generator].get(column))
                ours = NO_MATCHED_REAL if ours is None else ours
            rows.append(_row(f"{generator}: {quantity}", ours, reported[generator] if reported else None,
                             "" if have else why or NOT_EVALUATED))
    return _frame(rows)


# -- Chapter 6: what generalizes (beyond the paper) ---------------------------------------------------

def robustness(profile: Profile) -> pd.DataFrame:
    """Chapter 6: each model's ROC-AUC at the strongest level of each degradation, with its value on
    undegraded images in the note. The paper reports no degraded figure."""
    frame, why = _chapter_table("ch6_robustness", "drops", profile)
    if frame is None:
        return _frame([_row("robustness curves", NOT_RUN, None, why)])
    from ..classify.degrade import AXIS

    auc = frame[frame["metric"] == "auc"]
    return _frame([_row(f"{r.label}: ROC-AUC at {AXIS[r.degradation]} {r.strongest_level:g}",
                        plain_number(r.strongest / 100), None, f"undegraded: {r.undegraded / 100:.4f}")
                   for r in auc.itertuples()])


def probe_results(profile: Profile) -> pd.DataFrame:
    """Chapter 6: the CLIP linear probe beside Chapter 4's classifier on the test split and the
    transfer sets; the paper's number where it has one for ConvNeXt-XL (none for the probe)."""
    frame, why = _chapter_table(".classify.probe", "comparison", profile)  # helpers.classify.probe
    if frame is None:
        return _frame([_row("CLIP linear probe", NOT_RUN, None, why)])
    rows = []
    for r in frame.itertuples():
        generator = next((g for g in paper.TRANSFER_ACCURACY if g in r.set), None)
        reported = paper.TRANSFER_ACCURACY[generator] if generator and "probe" not in r.model and \
            r.n_real == 0 else None
        for metric in ("accuracy", "roc_auc"):
            value = plain_number(getattr(r, metric))
            rows.append(_row(f"{r.set}, {r.model}: {metric.replace('roc_auc', 'ROC-AUC')}",
                             NO_MATCHED_REAL if value is None else value,
                             reported if metric == "accuracy" else None))
    return _frame(rows)


def gradcam_check(profile: Profile) -> pd.DataFrame:
    """Chapter 6: the Grad-CAM object check: mean mass on COCO's objects minus their area share."""
    frame, why = _chapter_table("ch6_gradcam", "mass_table", profile)
    if frame is None:
        return _frame([_row("Grad-CAM object check", NOT_RUN, None, why)])
    return _frame([_row(str(quantity), value, None) for quantity, value in frame["value"].items()])
