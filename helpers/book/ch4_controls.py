"""Chapter 4: the training-time controls read together: what was measured, one table, and what it rules in or out.

Read back from ``<data>/<profile>/controls/measured.json`` and the evaluations of
``results/<profile>/eval/`` (Chapter 4's model ``paper-best_test``; each control on the study's
test split, ``<control>-best_test``, and on its own test rows, ``<control>-best_own-test``; the
probe, ``paper-best_probe``). Every sentence that depends on a number is written from the number,
with the test behind it, so the prose never claims more than the run shows.
"""

from __future__ import annotations

import json

import pandas as pd

from ..classify.classifier import EvaluateError, checkpoint_path
from ..classify.controls import PAPER_TEST, PROBE_SET, probe_pairs, probe_summary
from ..classify.eval_files import eval_name, load_result
from ..classify.metrics import binary_metrics, bootstrap_ci, mcnemar
from ..classify.train import run_folder
from ..core.steps import made_from_standins
from ..data import controls as ctl

ALPHA = 0.05
LABELS = {"compression-matched": "(a) compression-matched", "scale-matched": "(b) scale-matched",
          "null": "(d) null: real vs real"}
CHAPTER4 = "Chapter 4's model"
PROBE_LABEL = "(c) probe: Chapter 4's model, real test photographs augmented"


def measured(profile) -> dict:
    path = ctl.measured_path(profile)
    if not path.exists():
        raise ctl.ControlError(f"{path} does not exist: run `python -m helpers controls --profile {profile.name}`")
    return json.loads(path.read_text(encoding="utf-8"))


def measured_table(profile) -> pd.DataFrame:
    """What the controls copy, as measured on this profile's images."""
    m = measured(profile)
    j, f = m["jpeg"], m["factor"]
    rows = {
        "raw photographs read": j["files"],
        "JPEG quality, median (estimated from quantization tables)": j["quality_median"],
        "JPEG quality, quartiles": f"{j['quality_q1']:g} - {j['quality_q3']:g}",
        "files with the standard (IJG) tables exactly": f"{j['standard_tables']} of {j['jpeg_files']}",
        "chroma subsampling, most common": j["subsampling"],
        "downscale factor, photographs (median; quartiles)": f"{f['real_median']:.3f} ({f['real_q1']:.3f} - {f['real_q3']:.3f})",
        "downscale factor, generated images": f"{f['generated']:.3f}",
        "scale-matched: common factor": f"{max(f['real_median'], f['generated']):.3f}",
    }
    return pd.DataFrame({"value": rows}).rename_axis("measured")


def _results(profile, name: str) -> dict[str, dict | None]:
    """A control's two evaluations (study test, own test); None where not run."""
    out = {}
    for key, set_name in (("test", "test"), ("own", "own-test")):
        try:
            out[key] = load_result(profile, f"{name}-best_{set_name}")
        except EvaluateError:  # an evaluation not run yet is shown as missing
            out[key] = None
    return out


def _interval(value, low, high) -> str:
    return "-" if value is None else f"{value:.3f} [{low:.3f}, {high:.3f}]"


def _auc(result: dict | None, n_boot: int) -> str:
    """ROC-AUC with its BCa bootstrap interval (resampled within each class)."""
    if result is None or result["metrics"].get("roc_auc") is None:
        return "-"
    pred = result["predictions"]
    ci = bootstrap_ci(pred["label"], pred["p_generated"], "roc_auc", n=n_boot, seed=0, method="bca")
    return _interval(ci["estimate"], ci["low"], ci["high"])


def _correct(result: dict) -> pd.Series:
    pred = result["predictions"].set_index("path")
    return pred["predicted"] == pred["label"]


def versus_chapter4(base: dict, result: dict) -> dict:
    """McNemar's exact test between Chapter 4's model and a control on the same test images."""
    a, b = _correct(base), _correct(result)
    shared = a.index.intersection(b.index)
    return mcnemar(a[shared].to_numpy(), b[shared].to_numpy())


def _row(result: dict | None, own: dict | None, base: dict | None, n_boot: int) -> dict:
    m = result["metrics"] if result else {}
    o = own["metrics"] if own else {}
    test = versus_chapter4(base, result) if (base is not None and result is not None and result is not base) else None
    return {
        "study test: accuracy on real": _interval(m.get("accuracy_real"), m.get("accuracy_real_low"), m.get("accuracy_real_high")),
        "study test: accuracy on generated": _interval(m.get("accuracy_generated"), m.get("accuracy_generated_low"),
                                                      m.get("accuracy_generated_high")),
        "study test: ROC-AUC": _auc(result, n_boot),
        "McNemar p vs Chapter 4": "-" if test is None else f"{test['p_value']:.3g}",
        "own test: accuracy": _interval(o.get("accuracy"), o.get("accuracy_low"), o.get("accuracy_high")),
        "own test: ROC-AUC": _auc(own, n_boot),
    }


def probe_result(profile, base: dict) -> dict:
    """(c) as an evaluation of Chapter 4's model: the real test photographs after Algorithm 1 with
    the study's generated test images (unchanged), so that its row reads like the others."""
    probe = load_result(profile, eval_name(checkpoint_path(profile, None), PROBE_SET))["predictions"]
    generated = base["predictions"][base["predictions"]["label"] == 1]
    pred = pd.concat([probe, generated], ignore_index=True)
    return {"name": "probe", "predictions": pred, "metrics": binary_metrics(pred["label"], pred["p_generated"])}


def controls_table(profile, n_boot: int = 1000) -> pd.DataFrame:
    """Chapter 4's model and each control side by side: per-class accuracy with its Wilson 95%
    interval, ROC-AUC with its BCa 95% interval, McNemar's test against Chapter 4's model on the
    same test images; and each control on its own test rows (the null classifier's only test).
    The probe (c) is Chapter 4's model with the real test photographs augmented (McNemar: the same
    photographs unchanged and augmented)."""
    base = load_result(profile, PAPER_TEST)
    rows = {CHAPTER4: _row(base, None, base, n_boot)}
    for name in ctl.control_list(profile):
        r = _results(profile, name)
        rows[LABELS[name]] = _row(None if name == "null" else r["test"], r["own"], base, n_boot)
    rows[PROBE_LABEL] = _row(probe_result(profile, base), None, None, n_boot) | {
        "McNemar p vs Chapter 4": f"{probe_summary(probe_pairs(profile))['mcnemar_p']:.3g}"}
    return pd.DataFrame(rows).T


def probe_table(profile) -> pd.DataFrame:
    """(c) the probe: the real test photographs called generated, unchanged and after Algorithm 1."""
    s = probe_summary(probe_pairs(profile))
    rows = {when: {"called generated": f"{s[when]['called_generated']} of {s['n']}",
                   "share [Wilson 95%]": _interval(s[when]["share"], s[when]["low"], s[when]["high"]),
                   "mean P(generated)": round(s[f"mean_p_{when}"], 4)} for when in ("before", "after")}
    table = pd.DataFrame(rows).T.rename(index={"before": "unchanged", "after": "after Algorithm 1"})
    return table


def probe_by_technique(profile) -> pd.DataFrame:
    """Mean change of P(generated) among the photographs whose draw included each technique."""
    pairs = probe_pairs(profile)
    change = pairs["p_after"] - pairs["p_before"]
    ops = sorted({op for text in pairs["aug_ops"] for op in str(text).split("+") if op})
    return pd.DataFrame({op: {"photographs": int(mask.sum()), "mean change of P(generated)": round(change[mask].mean(), 4)}
                         for op in ops for mask in [pairs["aug_ops"].str.split("+").apply(lambda s, o=op: o in s)]}).T


# -- what the numbers say, in words ---------------------------------------------------------------

def _caveat(profile) -> str:
    if profile.name == "smoke" or made_from_standins(profile.name):
        return ("**Pipeline check, not a finding.** These models are tiny and random, or the data "
                "stand-ins; the sentences below show how the chapter reads its numbers, nothing about "
                "real or generated images.\n\n")
    return ""


def _measured_sentence(profile) -> str:
    j, f = measured(profile)["jpeg"], measured(profile)["factor"]
    return (f"The raw photographs' JPEG quality, estimated from their quantization tables, has a median "
            f"of **{j['quality_median']}** ({j['standard_tables']} of {j['jpeg_files']} files use the standard "
            f"tables exactly; subsampling {j['subsampling']}): the compression-matched control compresses "
            f"generated images at that quality first. The photographs are downscaled by a median factor of "
            f"{f['real_median']:.3f}, the generated images by {f['generated']:.3f}.")


def _trained_sentence(label: str, base: dict, result: dict, own: dict | None) -> str:
    """(a) or (b): does the control, trained without the difference, do as well on the same test images?"""
    acc, acc0 = result["metrics"]["accuracy"], base["metrics"]["accuracy"]
    p = versus_chapter4(base, result)["p_value"]
    said = f"**{label}**: accuracy {acc:.1%} on the study's test set against Chapter 4's {acc0:.1%} (McNemar p = {p:.2g}). "
    if p >= ALPHA:
        return said + ("No difference is shown at this number of test images: the model did not need this "
                       "difference of processing to reach Chapter 4's accuracy (a difference smaller than "
                       "this test can resolve is not ruled out).")
    if acc > acc0:
        return said + "The control does better: removing the difference did not cost accuracy."
    own_note = "" if own is None else (
        f" On test images processed as its own training images it reaches {own['metrics']['accuracy']:.1%}, "
        f"which tells a lost shortcut (low there too) from a mismatch between its training and the study's "
        f"test images (high there).")
    return said + ("The control does worse: part of Chapter 4's accuracy may rest on this difference of "
                   "processing." + own_note)


def _null_sentence(own: dict) -> str:
    m = own["metrics"]
    low, high = m["accuracy_low"], m["accuracy_high"]
    said = (f"**{LABELS['null']}**: accuracy {m['accuracy']:.1%} on {m['n']} test photographs "
            f"(Wilson 95% interval {low:.1%} to {high:.1%}). ")
    if low <= 0.5 <= high:
        return said + ("The interval holds 50%: consistent with chance, so the two processing chains alone "
                       "were not learned at this size; an effect inside the interval is not ruled out.")
    if low > 0.5:
        return said + ("Above chance: the processing alone is learnable, so part of any accuracy between "
                       "photographs and generated images can come from it.")
    return said + "Below chance: the halves are told apart (with the labels swapped), so the processing is learnable."


def _probe_sentence(profile) -> str:
    s = probe_summary(probe_pairs(profile))
    said = (f"**(c) the augmentation probe**: of {s['n']} real test photographs, Chapter 4's model calls "
            f"{s['before']['called_generated']} generated unchanged and {s['after']['called_generated']} after "
            f"Algorithm 1; P(generated) "
            f"changes by {s['mean_change']:+.3f} on average (paired permutation p = {s['permutation_p']:.2g}, "
            f"McNemar p = {s['mcnemar_p']:.2g}). ")
    if s["mean_change"] > 0 and min(s["permutation_p"], s["mcnemar_p"]) < ALPHA:
        return said + "It rises: the model reads augmentation itself as a sign of a generated image."
    return said + "No significant rise: augmentation alone does not make the model call a photograph generated."


def reading_text(profile) -> str:
    """Markdown: the measured values and one sentence per control, each from its numbers."""
    parts = [_caveat(profile) + _measured_sentence(profile)]
    base = load_result(profile, PAPER_TEST)
    for name in ctl.control_list(profile):
        r = _results(profile, name)
        if name == "null":
            parts.append(_null_sentence(r["own"]) if r["own"] else f"**{LABELS[name]}**: not evaluated yet.")
        elif r["test"] is not None:
            parts.append(_trained_sentence(LABELS[name], base, r["test"], r["own"]))
        else:
            parts.append(f"**{LABELS[name]}**: not evaluated yet.")
    if not ctl.control_list(profile):
        parts.append("This profile trains no control (`controls` is empty).")
    parts.append(_probe_sentence(profile))
    return "\n\n".join(parts)


def reading(profile):
    """:func:`reading_text`, rendered as Markdown in the notebook."""
    from IPython.display import Markdown  # a notebook kernel only (the book extra)

    return Markdown(reading_text(profile))


def steps(profile) -> list[tuple[str, tuple[str, ...]]]:
    """The controls' steps as ``(command, args)``, in order: the chapter runs them and ``make run``
    lists them (:mod:`helpers.book.pipeline`), the same calls. ``train`` steps use the chapter's processes."""
    out = [("controls", ())]
    for name in ctl.control_list(profile):
        out.append(("train", ("--variant", name)))
        if name != "null":  # the null classifier has no generated images to score on the study's test set
            out.append(("evaluate", ("--checkpoint", str(run_folder(profile, name) / "best.pt"))))
    return out + [("controls", ("--evaluate",))]
