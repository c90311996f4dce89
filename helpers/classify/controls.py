"""Chapter 4: the controls' evaluations: each control on its own test rows, and the augmentation probe.

``python -m helpers controls --profile P --evaluate`` (after ``train --variant NAME`` for each
control of the profile, and ``evaluate`` for Chapter 4's model) writes, under
``results/<profile>/eval/``:

- ``<control>-best_own-test``: the control's model on the control's own test rows (the null
  classifier's only test: its two halves of the real test photographs; for the other two, the test
  split with the control's processing, beside the study's test split that ``evaluate
  --checkpoint`` scores);
- ``paper-best_probe``: Chapter 4's model on the real test photographs after Algorithm 1 (the
  one-class augmentation probe): if the model learned "augmented means generated", P(generated)
  rises on them. :func:`probe_summary` pairs each photograph with its unchanged self.

Each is the same ``predictions.csv`` and ``metrics.json`` as any evaluation
(:mod:`helpers.classify.eval_files`), read back when the checkpoint and images are unchanged.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..core.paths import data_root, inside, shown
from ..core.stats import paired_permutation_test, wilson_interval
from ..data import controls as ctl
from .classifier import checkpoint_path, lazy_classifier
from .controls_data import probe_rows
from .eval_files import checkpoint_stamp, eval_name, fingerprint, load_result, reusable, save_result
from .metrics import binary_metrics, mcnemar
from .prediction import THRESHOLD, predict_images
from .train import run_folder

PAPER_TEST = "paper-best_test"  # Chapter 4's model on the study's test split (the evaluate step)
PROBE_SET = "probe"


def control_checkpoint(profile, name: str) -> Path:
    """The best weights of a control's run, or a :class:`ControlError` with the command that trains it."""
    path = run_folder(profile, ctl.check_name(name)) / "best.pt"
    if not path.is_file():
        raise ctl.ControlError(f"{shown(str(path))} does not exist: train the control first "
                               f"(`python -m helpers train --profile {profile.name} --variant {name}`)")
    return path


def score_rows(profile, checkpoint, set_name: str, rows: pd.DataFrame, *, device=None,
               batch_size: int = 16) -> dict:
    """P(generated) of ``rows`` (``path`` under the data root, ``label``) by ``checkpoint``, as an
    evaluation named ``<run>-<checkpoint>_<set_name>``; read back when nothing changed."""
    files = [inside(data_root(), p) for p in rows["path"]]
    name = eval_name(checkpoint, set_name)
    settings = {**checkpoint_stamp(checkpoint), "set": set_name, "train_model": profile.train_model,
                "train_head": profile.train_head, "train_img_size": profile.train_img_size,
                "threshold": THRESHOLD, "inputs": fingerprint(files)}
    old = reusable(profile, name, settings)
    if old is not None:
        print(f"evaluation {name}: already computed for this checkpoint and these images")
        return old | {"reused": True}
    probs = predict_images(lazy_classifier(profile, checkpoint)(), files, profile.train_img_size,
                           profile.train_head, device, batch_size, min_side=1, progress=True)
    predictions = pd.DataFrame({"path": rows["path"].astype(str).tolist(),
                                "label": rows["label"].astype(int).tolist(), "p_generated": probs})
    predictions["predicted"] = (predictions["p_generated"] >= THRESHOLD).astype(int)
    metrics = binary_metrics(predictions["label"], predictions["p_generated"], THRESHOLD)
    return save_result(profile, {"name": name, "settings": settings, "metrics": metrics}, predictions)


def own_test(profile, name: str, **kw) -> dict:
    """A control's model on the test rows of its own images."""
    rows = ctl.load_rows(profile, name)
    return score_rows(profile, control_checkpoint(profile, name), "own-test", rows[rows.split == "test"], **kw)


def probe(profile, **kw) -> dict:
    """Chapter 4's model on the real test photographs after Algorithm 1 (all of label real)."""
    return score_rows(profile, checkpoint_path(profile, None), PROBE_SET, probe_rows(profile), **kw)


def probe_pairs(profile) -> pd.DataFrame:
    """One row per real test photograph: P(generated) unchanged (``p_before``, Chapter 4's
    evaluation) and after Algorithm 1 (``p_after``), with the techniques applied (``aug_ops``)."""
    rows = probe_rows(profile)
    after = load_result(profile, eval_name(checkpoint_path(profile, None), PROBE_SET))["predictions"]
    before = load_result(profile, PAPER_TEST)["predictions"].set_index("path")["p_generated"]
    pairs = rows[["origin", "aug_ops"]].assign(p_after=after.set_index("path").loc[rows.path, "p_generated"].to_numpy())
    missing = sorted(set(pairs.origin) - set(before.index))
    if missing:
        raise ctl.ControlError(f"{PAPER_TEST} does not hold {missing[0]} ({len(missing)} photographs): "
                               f"run `python -m helpers evaluate --profile {profile.name}` again")
    return pairs.assign(p_before=before.loc[pairs.origin].to_numpy())


def _share(called: np.ndarray) -> dict:
    low, high = wilson_interval(int(called.sum()), len(called))
    return {"called_generated": int(called.sum()), "share": float(called.mean()), "low": low, "high": high}


def probe_summary(pairs: pd.DataFrame, seed: int = 0) -> dict:
    """Does Algorithm 1 alone make a photograph look generated to the model? The share called
    generated before and after (Wilson intervals), McNemar's exact test on those calls, and a
    paired permutation test of the mean change of P(generated)."""
    before, after = pairs["p_before"].to_numpy(float), pairs["p_after"].to_numpy(float)
    called_before, called_after = before >= THRESHOLD, after >= THRESHOLD
    test = paired_permutation_test(after, before, seed=seed) if len(pairs) >= 2 else None
    return {"n": len(pairs), "before": _share(called_before), "after": _share(called_after),
            "mean_p_before": float(before.mean()), "mean_p_after": float(after.mean()),
            "mean_change": float((after - before).mean()),
            "permutation_p": None if test is None else test["p_value"],
            "mcnemar_p": mcnemar(~called_before, ~called_after)["p_value"]}


def run(profile) -> None:
    """Every evaluation of the controls of the profile, then the probe; a summary line each."""
    for name in ctl.control_list(profile):
        m = own_test(profile, name)["metrics"]
        auc = "-" if m["roc_auc"] is None else f"{m['roc_auc']:.4f}"
        print(f"{name} on its own test rows: accuracy {m['accuracy']:.4f} "
              f"[{m['accuracy_low']:.4f}, {m['accuracy_high']:.4f}], ROC-AUC {auc}, {m['n']} images")
    probe(profile)
    s = probe_summary(probe_pairs(profile))
    print(f"probe: {s['n']} real test photographs called generated {s['before']['called_generated']} times "
          f"unchanged, {s['after']['called_generated']} after Algorithm 1; mean change of P(generated) "
          f"{s['mean_change']:+.4f} (paired permutation p = {s['permutation_p']})")
