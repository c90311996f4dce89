"""Chapters 4-5: every training hyperparameter the book chose, per profile, and where each comes from.

The paper names its optimizer, loss, batch, epochs and input size, and says it stopped early; it
gives no learning rate, patience, schedule or weight decay. A reader cannot judge (or repeat) a
result whose recipe is half in a code comment, so this table states every value the book trains
with, read from the profiles (:mod:`helpers.core.profiles`, the one source of truth) and, for the
learning rate chosen per backbone, from Chapter 5's grid (``train/ablation_lr.json``). The source
column says which values are the paper's and which are ours, and why.
"""

from __future__ import annotations

import pandas as pd

from ..classify import backbones
from ..core import paper
from ..core.profiles import PROFILES, lr_grid
from .ch5_runs import choose, seeds, sizes

NOT_CHOSEN = "not chosen yet (Chapter 5's grid has not run)"


def _lr_list(rates) -> str:
    return ", ".join(backbones.lr_text(v) for v in rates)


def _chosen(profile) -> str:
    """The learning rate Chapter 5's grid kept for each backbone of this profile, as far as it ran."""
    picked = {backbones.LABELS[k]: r["chosen_lr"] for k, r in choose(profile)["backbones"].items()}
    if all(v is None for v in picked.values()):
        return NOT_CHOSEN
    return "; ".join(f"{name} {backbones.lr_text(v) if v else 'not yet'}" for name, v in picked.items())


# (hyperparameter, value of a profile, where it comes from)
ROWS = (
    ("optimizer", lambda p: "Adam (PyTorch defaults: betas 0.9, 0.999; eps 1e-8)",
     "paper (section 4): Adam; the betas and eps are PyTorch's defaults, the paper gives none"),
    ("loss and head", lambda p: f"{p.train_head}: 2 outputs, sigmoid, binary cross-entropy"
     if p.train_head == "paper" else f"{p.train_head}: 1 logit, binary cross-entropy",
     "paper (section 4): one dense layer with two outputs, sigmoid, binary cross-entropy"),
    ("learning rate, Chapter 4's model", lambda p: backbones.lr_text(p.train_lr),
     "ours: the paper gives none. 1e-4 is a usual rate for fine-tuning a pretrained network with "
     "Adam; smoke's tiny random models use 1e-3 to move at all in three epochs"),
    ("learning rates tried, Chapter 5", lambda p: _lr_list(lr_grid(p.ablation_lr_grid)),
     "ours: half a decade either side of 1e-4, the same grid for every backbone (smoke: two values, "
     "so that the choice runs)"),
    ("learning rate chosen per backbone", _chosen,
     "ours: the rate of the lowest validation loss in the grid, ties to the smaller; the test split "
     "is not used to choose"),
    ("seeds per backbone, Chapter 5", lambda p: f"{p.ablation_seeds} ({', '.join(map(str, seeds(p)))})",
     "ours: the paper reports one run; several seeds show how much a seed alone moves a number"),
    ("global batch", lambda p: str(p.train_batch),
     "paper: 4 (paper profile); course: 32, ours, to make an epoch of one GPU short"),
    ("micro-batch per process", lambda p: str(p.train_micro_batch),
     "ours: what fits one device; gradients are accumulated up to the global batch, so the loss of a "
     "step is the same"),
    ("epochs, at most", lambda p: str(p.train_epochs), "paper: 200 (paper profile); fewer in smoke and course, ours"),
    ("early stopping", lambda p: f"after {p.train_patience} epochs without a lower validation loss; "
     f"the best epoch's weights are kept",
     "paper: early stopping, no patience given; the patience is ours"),
    ("learning-rate schedule", lambda p: "none: the rate is constant",
     "ours: the paper names none, and a schedule would be one more choice per backbone"),
    ("weight decay", lambda p: str(p.train_weight_decay), "ours: the paper names none; Adam's default (0)"),
    ("precision", lambda p: f"{p.train_precision} autocast on a GPU; float32 on a CPU",
     "ours: bf16 autocast saves memory and time on a current GPU; the paper does not say"),
    ("input size (px)", lambda p: f"{p.train_img_size} for every backbone"
     + (f"; variant {sizes(p)[1]}" if len(sizes(p)) > 1 else ""),
     f"paper: {paper.INPUT_SIDE} for ConvNeXt-XL; the size of the other three is not given, so Table 3 "
     "uses one size for all and repeats at a second size"),
    ("pretrained weights", lambda p: p.train_pretrained,
     "paper: ImageNet-pretrained (timm's published weights); smoke: random stand-ins"),
    ("augmentation", lambda p: f"Algorithm 1 once on disk, {p.augment_count} generated images; none at "
     f"training time", "paper (Algorithm 1, section 4); the ranges of its four techniques are ours "
     "(Chapter 2)"),
)


def hyperparameter_table(profile=None) -> pd.DataFrame:
    """One row per training hyperparameter: its value in each profile and where it comes from.

    ``profile`` (the chapter's, with its overrides and ``BOOK_SET``) replaces the published profile
    of its name, so its column shows what this build trains with."""
    shown = [profile if profile is not None and p.name == profile.name else p for p in PROFILES.values()]
    rows = {}
    for name, value, source in ROWS:
        rows[name] = {p.name: value(p) for p in shown} | {"where it comes from": source}
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("hyperparameter")
