"""Chapter 3: the tables and figures of inpainting, read back from ``results/<profile>/inpaint/<model>/``.

A model the inpaint step skipped (its published weights could not be fetched: ``skipped.json`` in
its folder) is left out of every table and plot, :func:`skipped_note` says which were skipped and
how to add them, and :func:`figure_grid` draws that note in place of the model's figure, so the
chapter renders with any subset of its inpainters.

``scores.csv`` holds one row per image; its NIQE of the inpainted result is ``niqe_after`` (beside
``niqe_before``, of the original). A file written before that rename, with the column ``niqe``, is
read as ``niqe_after`` (:func:`load_scores`), so older results still render. :func:`per_image`
shows the scores image by image (the fill's own among them: PSNR, SSIM and LPIPS inside the hole),
:func:`holes_text` says which holes ran (read from the column ``hole_kind``), and
:func:`paired_tests` compares generated with real images pair by pair: image i of every set has
hole i (the same hole, or in object removal the real photograph's hole moved).

Two views need no run at all. :func:`weights_table` names the checkpoint each network loads and whose
weights it holds, from the code's own list, so that the chapter credits the right people.
:func:`paper_niqe_check` and :func:`paper_niqe_text` hold the paper's own per-image NIQE rows against
what its text says of them (the paper's numbers, recomputed from :mod:`helpers.core.paper`).
"""

from __future__ import annotations

import json
import textwrap

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from PIL import Image

from ..core import paper
from ..core.stats import holm, paired_permutation_test
from ..inpaint.masks import DILATE_PX, OBJECT_MAX_RATIO, OBJECT_MIN_RATIO
from ..inpaint.quality import bootstrap_difference
from ..inpaint.step import REAL, out_dir, skipped_path
from ..inpaint.weights import PUBLISHED
from .figures import Cell, image_grid

PAPER_N = len(paper.TABLE2_FID[paper.TABLE2_SOURCES[0]])  # 10 images per source in Table 2

# Section 5.2's reading of its Table 2, in its own words (the claim the paper's rows are checked against).
PAPER_NIQE_CLAIM = "the generated images have higher values on average than the real images"

# Whose weights each published checkpoint holds (the files themselves: helpers.inpaint.weights.PUBLISHED),
# with the references page's keys, so that the chapter never credits a model's authors for a third party's
# training.
WEIGHTS_ORIGIN = {
    "pconv": ("a third-party re-implementation (naoto0804), trained by its author on Places2; not the "
              + "weights of Liu et al. (NVIDIA)", "naoto0804pconv"),
    "deepfill_v2": ("the official TensorFlow Places2 weights of Yu et al., converted to PyTorch by nipponjo",
                    "yu2019deepfillcode, nipponjo2022deepfill"),
}


# The per-image scores the paired tests compare, as columns of scores.csv (or, for the change of
# NIQE, made from two of them), with the chapter's names; those missing from a file are left out.
NIQE_CHANGE = "niqe_change"
PAIRED_METRICS = {"niqe_after": "NIQE after", NIQE_CHANGE: "NIQE after - before", "psnr_hole": "PSNR in the hole",
                  "ssim_hole": "SSIM in the hole", "lpips_hole": "LPIPS in the hole", "sifid": "SIFID",
                  "sifid_hole": "SIFID of the hole's box"}
PAIRED_COLUMNS = ["model", "set", "metric", "n", "mean real", "mean generated", "mean difference", "p",
                  "p (Holm)"]
# The per-image table's columns (scores.csv's), with the chapter's names; lower is better for NIQE,
# LPIPS and SIFID, higher for PSNR and SSIM.
PER_IMAGE_COLUMNS = {"hole_kind": "hole", "hole_ratio": "hole share", "niqe_before": "NIQE before",
                     "niqe_after": "NIQE after", "psnr_hole": "PSNR in hole", "ssim_hole": "SSIM in hole",
                     "lpips_hole": "LPIPS in hole", "sifid": "SIFID", "sifid_hole": "SIFID of hole's box"}
# Scores that also have a whole-image view in Table 2, with their labels there.
SCORE_LABELS = {"niqe_after": "NIQE", "sifid": "SIFID"}


def load_scores(profile, model: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``scores.csv`` (per image) and ``fid.csv`` (per set) of ``model``; an older ``scores.csv``
    whose NIQE of the result is named ``niqe`` gets it as ``niqe_after``."""
    folder = out_dir(profile, model)
    if not (folder / "scores.csv").exists():
        raise FileNotFoundError(f"{folder / 'scores.csv'} does not exist: run `python -m helpers inpaint "
                                f"--profile {profile.name} --model {model}` first")
    scores = pd.read_csv(folder / "scores.csv")
    if "niqe" in scores and "niqe_after" not in scores:
        scores = scores.rename(columns={"niqe": "niqe_after"})
    return scores, pd.read_csv(folder / "fid.csv")


def skipped(profile, models: list[str]) -> dict[str, str]:
    """{model: the step's message} for each of ``models`` that the inpaint step skipped."""
    return {m: json.loads(skipped_path(profile, m).read_text())["reason"]
            for m in models if skipped_path(profile, m).exists()}


def ran(profile, models: list[str]) -> list[str]:
    """``models`` less the skipped ones (a model neither run nor skipped still fails loudly)."""
    gone = skipped(profile, models)
    return [m for m in models if m not in gone]


def skipped_text(profile, models: list[str]) -> str:
    """Markdown: which inpainters were skipped, why, and how to add them (or that all ran)."""
    gone = skipped(profile, models)
    if not gone:
        return f"All {len(models)} inpainters of profile `{profile.name}` ran: {', '.join(models)}."
    head = (f"**Skipped: {', '.join(gone)}** (profile `{profile.name}`). The tables and figures "
            f"below show the other inpainters. Rerun this chapter once the weights are in place.")
    return "\n\n".join([head] + [f"```text\n{reason}\n```" for reason in gone.values()])


def skipped_note(profile, models: list[str]):
    """:func:`skipped_text`, rendered as Markdown in the notebook."""
    from IPython.display import Markdown  # a notebook kernel only (the book extra)

    return Markdown(skipped_text(profile, models))


def _skipped_figure(model: str, reason: str):
    """A figure that says ``model`` was skipped and how to add it, in place of its fills."""
    lines = [f"{model} was skipped: no results to show."]
    lines += [w for line in reason.splitlines() for w in textwrap.wrap(line.strip(), 110)]
    return image_grid([], note="\n".join(lines), size=(10, 2.6))


def _set_row(row, model: str, titled: bool) -> list[Cell]:
    """One set's panels: the original, the original with its hole painted white, the hole, the fill."""
    original = np.asarray(Image.open(row.original).convert("RGB"))
    hole = np.asarray(Image.open(row.mask)) > 127
    masked = original.copy()
    masked[hole] = 255
    titles = ("original", "masked", "mask (white = hole)", model) if titled else ("",) * 4
    return [Cell(panel, title) for panel, title in zip((original, masked, hole, row.result), titles)]


def figure_grid(profile, model: str, index: int = 0):
    """The paper's Figs. 1-4 layout, one row per set: original, masked, mask, result (or, for a
    skipped model, a figure that says so and how to add it)."""
    reason = skipped(profile, [model]).get(model)
    if reason is not None:
        return _skipped_figure(model, reason)
    scores, _ = load_scores(profile, model)
    rows = scores[scores["index"] == index]
    cells = [_set_row(row, model, titled=r == 0) for r, row in enumerate(rows.itertuples())]
    return image_grid(cells, row_labels=list(rows.set), note=f"no image {index} was scored for {model}",
                      size=(2.5, 2.6), fontsize=10)


def per_image(profile, model: str, first: int = PAPER_N) -> pd.DataFrame:
    """``model``'s scores image by image, for the first ``first`` images of each set (the paper's
    Table 2 has ten rows per source), with the chapter's names (:data:`PER_IMAGE_COLUMNS`);
    columns that an older ``scores.csv`` lacks are left out."""
    scores, _ = load_scores(profile, model)
    part = scores[scores["index"] < first]
    names = {c: label for c, label in PER_IMAGE_COLUMNS.items() if c in part.columns}
    return part.set_index(["set", "index"])[list(names)].rename(columns=names).round(3)


def _holes_sentence(scores: pd.DataFrame) -> str:
    """What the holes of one model's ``scores.csv`` were, from its column ``hole_kind``."""
    if "hole_kind" not in scores.columns:
        return ("These results were written before the step recorded its holes' kind (`hole_kind`): "
                "run the step again to see it.")
    real = scores.loc[scores.set == REAL, "hole_kind"]
    objects, n = int((real == "object").sum()), len(real)
    share = f"{scores.hole_ratio.mean():.0%}"
    if (real == "folder").all():
        return (f"**Holes from a folder of masks** (`--masks DIR`): image *i* of every set gets the same hole "
                f"({share} of the image on average).")
    if objects == 0:
        return (f"**Free-form holes**: seeded strokes covering {share} of each image on average (`mask_ratio`); "
                f"image *i* of every set gets exactly the same hole.")
    fallback = n - objects
    text = (f"**Object removal**: the holes of {objects} of the {n} photographs are the outline of one of their "
            f"COCO objects (the largest that covers {OBJECT_MIN_RATIO:.0%}-{OBJECT_MAX_RATIO:.0%} of the image after "
            f"the crop), carried through the crop and dilated by {DILATE_PX} px")
    if fallback:
        text += f"; the other {fallback} had no such object and got free-form strokes instead"
    return (text + f" ({share} of the image on average). A generated image has no annotated objects, so "
            "generated image *i* gets photograph *i*'s hole moved to a seeded random place where it fits "
            "wholly: the same area and shape, at another position.")


def holes_text(profile, models: list[str]) -> str:
    """Markdown: which holes the models that ran were filled through, and how the generated sets
    got theirs, read from each ``scores.csv`` (so the text says what ran, not what was asked)."""
    described: dict[str, list[str]] = {}
    for model in ran(profile, models):
        described.setdefault(_holes_sentence(load_scores(profile, model)[0]), []).append(model)
    if not described:
        return "No inpainter ran, so there are no holes to describe."
    if len(described) == 1:
        return next(iter(described))
    return "\n\n".join(f"{', '.join(names)}: {text}" for text, names in described.items())


def holes_note(profile, models: list[str]):
    """:func:`holes_text`, rendered as Markdown in the notebook."""
    from IPython.display import Markdown  # a notebook kernel only (the book extra)

    return Markdown(holes_text(profile, models))


def table1() -> pd.DataFrame:
    """The paper's Table 1, as printed (a qualitative reading)."""
    return pd.DataFrame(paper.TABLE1).T.rename_axis("the paper's Table 1")


def table2(profile, models: list[str]) -> pd.DataFrame:
    """Ours per model and set (first 10 images, as the paper, and all), next to the paper's averages;
    skipped models are left out."""
    rows = []
    for model in ran(profile, models):
        scores, fids = load_scores(profile, model)
        for set_name, part in scores.groupby("set", sort=False):
            first = part[part["index"] < PAPER_N]
            fid = fids.loc[fids["set"] == set_name, "fid"].iloc[0]
            rows.append({"model": model, "set": set_name, f"NIQE, first {PAPER_N}": first.niqe_after.mean(),
                         f"SIFID, first {PAPER_N}": first.sifid.mean(), "images": len(part),
                         "NIQE, all": part.niqe_after.mean(), "SIFID, all": part.sifid.mean(),
                         "FID of the set": fid})
    columns = ["model", "set", f"NIQE, first {PAPER_N}", f"SIFID, first {PAPER_N}", "images",
               "NIQE, all", "SIFID, all", "FID of the set"]  # named, so that no model run gives an empty table
    return pd.DataFrame(rows, columns=columns).set_index(["model", "set"]).round(3)


def paper_table2() -> pd.DataFrame:
    """The paper's Table 2 averages, as printed and as recomputed from its own rows."""
    rows = []
    for src in paper.TABLE2_SOURCES:
        rows.append({"source": src, "FID, printed": paper.TABLE2_AVERAGE[src][0],
                     "FID, mean of its rows": round(float(np.mean(paper.TABLE2_FID[src])), 2),
                     "NIQE, printed": paper.TABLE2_AVERAGE[src][1],
                     "NIQE, mean of its rows": round(float(np.mean(paper.TABLE2_NIQE[src])), 4)})
    return pd.DataFrame(rows).set_index("source")


def table2_plot(profile, models: list[str]):
    """Per-image scores: the paper's (FID per image, NIQE) and ours (SIFID, NIQE), by set (skipped
    models left out)."""
    theirs = pd.DataFrame([{"source": s, "score": v, "metric": m} for m, table in
                           (("FID per image (paper)", paper.TABLE2_FID), ("NIQE (paper)", paper.TABLE2_NIQE))
                           for s, values in table.items() for v in values])
    ours = []
    for model in ran(profile, models):
        scores, _ = load_scores(profile, model)
        for metric, label in SCORE_LABELS.items():
            ours += [{"source": r.set, "score": getattr(r, metric), "model": model,
                      "metric": f"{label} (ours)"} for r in scores.itertuples()]
    ours = pd.DataFrame(ours, columns=["source", "score", "model", "metric"])
    fig, axes = plt.subplots(2, 2, figsize=(11, 7.5))
    axes = axes.ravel()
    for ax, metric in zip(axes[:2], ("FID per image (paper)", "NIQE (paper)")):
        sns.stripplot(theirs[theirs.metric == metric], x="source", y="score", ax=ax, color="tab:gray")
        ax.set_title(metric, fontsize=10)
    order = [s for s in paper.TABLE2_SOURCES if s in set(ours.source)]
    for ax, metric in zip(axes[2:], ("SIFID (ours)", "NIQE (ours)")):
        sns.stripplot(ours[ours.metric == metric], x="source", y="score", hue="model", ax=ax, dodge=True,
                      order=order)
        ax.set_title(f"{metric}, profile {profile.name}", fontsize=10)
    for ax in axes:
        ax.set_xlabel("")
        ax.tick_params(axis="x", labelrotation=20, labelsize=8)
    fig.tight_layout()
    return fig


def differences(profile, models: list[str]) -> pd.DataFrame:
    """Generated minus real, per model, set and score, with a bootstrap 95% interval (skipped
    models left out)."""
    rows = []
    for model in ran(profile, models):
        scores, _ = load_scores(profile, model)
        real = scores[scores.set == REAL]
        for set_name, part in scores[scores.set != REAL].groupby("set", sort=False):
            for metric, label in SCORE_LABELS.items():
                res = bootstrap_difference(real[metric].to_numpy(), part[metric].to_numpy(), seed=profile.seed)
                rows.append({"model": model, "set": set_name, "score": label,
                             "generated minus real": res["observed"], "95% low": res["ci_low"],
                             "95% high": res["ci_high"], "p (bootstrap)": res["p_value"],
                             "images per set": f"{res['n_a']} / {res['n_b']}"})
    columns = ["model", "set", "score", "generated minus real", "95% low", "95% high", "p (bootstrap)",
               "images per set"]
    return pd.DataFrame(rows, columns=columns).set_index(["model", "set", "score"]).round(3)


def _paired_values(scores: pd.DataFrame) -> pd.DataFrame:
    """The scores the paired tests compare, one row per (set, index): the columns of
    :data:`PAIRED_METRICS` present, with NIQE's change made from ``niqe_after - niqe_before``."""
    scores = scores.copy()
    if {"niqe_after", "niqe_before"} <= set(scores.columns):
        scores[NIQE_CHANGE] = scores["niqe_after"] - scores["niqe_before"]
    present = [c for c in PAIRED_METRICS if c in scores.columns]
    return scores.set_index(["set", "index"])[present].astype(float)


def _paired_row(model: str, set_name: str, metric: str, pairs: pd.DataFrame, seed: int,
                n_resamples: int) -> dict:
    """One test: generated against real over the indices where both scores are finite (a score
    that is not a number, e.g. PSNR of a fill equal to the original, leaves its pair out)."""
    pairs = pairs[np.isfinite(pairs).all(axis=1)]
    real, generated = pairs["real"].to_numpy(), pairs["generated"].to_numpy()
    p = float("nan")
    if len(pairs) >= 2:
        p = paired_permutation_test(generated, real, n_resamples=n_resamples, seed=seed)["p_value"]
    return {"model": model, "set": set_name, "metric": PAIRED_METRICS[metric], "n": len(pairs),
            "mean real": real.mean() if len(pairs) else np.nan,
            "mean generated": generated.mean() if len(pairs) else np.nan,
            "mean difference": (generated - real).mean() if len(pairs) else np.nan, "p": p}


def paired_comparison(scores_by_model: dict[str, pd.DataFrame], seed: int = 0,
                      n_resamples: int = 10000) -> pd.DataFrame:
    """For each model, each generated set against MS-COCO and each score of :data:`PAIRED_METRICS`
    in its ``scores.csv``: the paired permutation test of generated against real by index (image i
    of every set has hole i), the mean difference generated minus real, and the p-values
    Holm-corrected across the whole table (a test that could not run, with fewer than two pairs,
    has no p-value and is left out of the correction)."""
    rows = []
    for model, scores in scores_by_model.items():
        values = _paired_values(scores)
        sets = list(dict.fromkeys(values.index.get_level_values("set")))
        if REAL not in sets:
            continue
        real = values.xs(REAL, level="set")
        for set_name in [s for s in sets if s != REAL]:
            generated = values.xs(set_name, level="set")
            for metric in values.columns:
                pairs = pd.concat({"real": real[metric], "generated": generated[metric]}, axis=1, join="inner")
                rows.append(_paired_row(model, set_name, metric, pairs, seed, n_resamples))
    frame = pd.DataFrame(rows, columns=PAIRED_COLUMNS[:-1])
    tested = frame["p"].notna()
    frame["p (Holm)"] = np.nan
    if tested.any():
        frame.loc[tested, "p (Holm)"] = holm(frame.loc[tested, "p"].to_numpy())
    return frame.set_index(["model", "set", "metric"])


def paired_tests(profile, models: list[str], n_resamples: int = 10000) -> pd.DataFrame:
    """:func:`paired_comparison` of the models that ran (skipped ones left out), seeded with the
    profile's seed, rounded for the chapter."""
    frame = paired_comparison({m: load_scores(profile, m)[0] for m in ran(profile, models)},
                              seed=profile.seed, n_resamples=n_resamples)
    return frame.round({"mean real": 3, "mean generated": 3, "mean difference": 3, "p": 4, "p (Holm)": 4})


def weights_table() -> pd.DataFrame:
    """The checkpoint file each network loads in ``course`` and ``paper``, where it is published and
    whose weights it holds, read from :data:`helpers.inpaint.weights.PUBLISHED`, so that the chapter
    names the files the code fetches."""
    rows = [{"model": model, "file": pub.file, "published in": pub.source, "whose weights": WEIGHTS_ORIGIN[model][0],
             "references": WEIGHTS_ORIGIN[model][1], "another file": f"--set {pub.setting}=PATH_OR_URL"}
            for model, pub in PUBLISHED.items()]
    return pd.DataFrame(rows).set_index("model")


def paper_niqe_check(decimals: int | None = 5) -> pd.DataFrame:
    """The paper's NIQE per set as the mean of its own per-image rows (Table 2), beside its printed
    average and section 5.2's claim, and what the rows say about that claim (lower NIQE is more
    natural). These are the paper's numbers, recomputed, not ours. ``decimals=None``: unrounded (the
    default, 5, shows a mean of ten 4-decimal rows exactly)."""
    real = paper.TABLE2_SOURCES[0]
    real_mean = float(np.mean(paper.TABLE2_NIQE[real]))
    rows = []
    for src in paper.TABLE2_SOURCES:
        mean = float(np.mean(paper.TABLE2_NIQE[src]))
        says = "the real set" if src == real else f"{'higher' if mean > real_mean else 'not higher'} than {real}"
        rows.append({"set": src, "rows in Table 2": len(paper.TABLE2_NIQE[src]), "mean NIQE of its rows": mean,
                     "NIQE average, printed": paper.TABLE2_AVERAGE[src][1],
                     "section 5.2 claims": "the real set" if src == real else f"higher than {real}",
                     "its rows say": says})
    frame = pd.DataFrame(rows).set_index("set")
    return frame if decimals is None else frame.round(decimals)


def paper_niqe_text() -> str:
    """Markdown: which generated sets' own rows contradict section 5.2's NIQE claim, with the means,
    computed from the paper's rows (so that no number of this sentence is typed by hand)."""
    check = paper_niqe_check(decimals=None)
    real = paper.TABLE2_SOURCES[0]
    real_mean = check.loc[real, "mean NIQE of its rows"]
    against = [s for s in check.index if s != real and check.loc[s, "mean NIQE of its rows"] <= real_mean]
    head = f"**The paper's numbers, not ours.** Section 5.2 reads Table 2 as showing that \"{PAPER_NIQE_CLAIM}\"."
    if not against:
        return f"{head} The means of its own NIQE rows agree for every generated set."
    mean, printed = check["mean NIQE of its rows"], check["NIQE average, printed"]
    parts = [f"{s}'s rows average {mean[s]:.5f} (printed average {printed[s]:.4f})" for s in against]
    text = (f"{head} The means of its own per-image NIQE rows disagree: {'; '.join(parts)}, against "
            f"{real_mean:.5f} for {real} (printed average {printed[real]:.4f}). "
            f"By NIQE, lower is more natural, so by the paper's own rows the inpainted images of "
            f"{', '.join(against)} score as natural as the photographs, or more.")
    if all(printed[s] > printed[real] for s in against):
        off = [s for s in [real, *against] if abs(mean[s] - printed[s]) > 1e-4]  # more than the last digit
        text += (" Only the printed averages support the claim"
                 + (f", and for {', '.join(off)} they are not the means of the rows above them." if off else "."))
    return text


def paper_niqe_note():
    """:func:`paper_niqe_text`, rendered as Markdown in the notebook."""
    from IPython.display import Markdown  # a notebook kernel only (the book extra)

    return Markdown(paper_niqe_text())
