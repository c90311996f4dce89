"""Chapters 1-5, the results page: the headline numbers for ``{glue:text}``, so the page's prose quotes the tables.

A key is ``<profile>_<what>`` for a profile's number (``smoke_test_accuracy``) and
``reported_<what>`` for the paper's, with the same ``<what>``; a model's or a generator's name
enters a key as its :func:`helpers.core.files.slug` (``"DALL-E 2"`` -> ``dall-e-2``:
``smoke_transfer_dall-e-2_accuracy``). Only numbers that exist get a key: a piece not run yet
has none, and the page's prose that quotes it says so instead of a guess.
"""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd

from ..core import paper
from ..core.files import slug
from ..core.profiles import Profile
from ..data import manifest as mf
from .results_tables import (
    PAPER_MODEL,
    classifier_metrics,
    data_counts,
    paper_images_per_second,
    plain_number,
    table3,
    training_speed,
    transfer,
)


def _ours(frame: pd.DataFrame, quantity: str):
    """The number in ``ours`` of the row ``quantity``; None when it is missing or not a number."""
    hit = frame.loc[frame["quantity"] == quantity, "ours"]
    return plain_number(hit.iloc[0]) if len(hit) else None


def _headline_rows() -> dict[str, tuple[Callable[[Profile], pd.DataFrame], str]]:
    """Glue key suffix -> (reader, quantity)."""
    picks = {"test_accuracy": (classifier_metrics, "test accuracy"), "test_f1": (classifier_metrics, "test F1"),
             "test_roc_auc": (classifier_metrics, "test ROC-AUC"),
             "epoch_minutes": (training_speed, "minutes per epoch"),
             "augmented_train": (data_counts, "augmented generated images, train")}
    picks |= {f"{label}_{split}": (data_counts, f"{label} images, {split}")
              for label in mf.LABELS for split in mf.SPLITS}
    picks |= {f"{slug(m)}_accuracy": (table3, f"{m}: accuracy") for m in paper.TABLE3}
    picks |= {f"transfer_{slug(g)}_accuracy": (transfer, f"{g}: accuracy on generated images")
              for g in paper.TRANSFER_ACCURACY}
    return picks


def glue_values(profile: Profile, prefix: str | None = None) -> dict[str, int | float]:
    """The headline numbers of ``profile`` for myst-nb glue, keyed ``<prefix>_<what>`` (prefix:
    the profile's name), e.g. ``smoke_test_accuracy``. Only numbers that exist: a piece not run
    yet has no key."""
    tables = {reader: reader(profile) for reader in {r for r, _ in _headline_rows().values()}}
    out = {}
    for suffix, (reader, quantity) in _headline_rows().items():
        value = _ours(tables[reader], quantity)
        if value is not None:
            out[f"{prefix or profile.name}_{suffix}"] = value
    return out


def reported_values() -> dict[str, int | float]:
    """The paper's numbers for glue, keyed ``reported_<what>`` with the suffixes of :func:`glue_values`."""
    out = {"reported_test_accuracy": paper.TEST_ACCURACY, "reported_epoch_minutes": paper.EPOCH_MINUTES,
           "reported_augmented_train": paper.AUGMENTED_TRAIN,
           "reported_images_per_second": paper_images_per_second()}
    _, out["reported_test_f1"], out["reported_test_roc_auc"] = paper.TABLE3[PAPER_MODEL]
    out |= {f"reported_{label}_{split}": n for label, splits in paper.COUNTS.items() for split, n in splits.items()}
    out |= {f"reported_{slug(m)}_accuracy": v[0] for m, v in paper.TABLE3.items()}
    out |= {f"reported_transfer_{slug(g)}_accuracy": v for g, v in paper.TRANSFER_ACCURACY.items()}
    return out
