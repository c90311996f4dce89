"""Chapter 5: which training runs make Table 3: one input size, a learning rate chosen on validation, seeds.

A fair ablation changes the backbone and nothing else. So all four backbones are trained at one
input size (the profile's ``train_img_size``, with one input transform,
:mod:`helpers.classify.transform`), and each gets its own learning rate, chosen the same way for
all: every rate of ``ablation_lr_grid`` is trained with the profile's seed, and the one whose run
reached the lowest validation loss is kept (ties: the smaller rate). The test set is not looked at
to choose. The chosen rate is then trained with ``ablation_seeds`` seeds (``seed``, ``seed + 1``,
...), so that Table 3 shows the spread a seed alone makes. The paper does not say at what size it
fed the three smaller models, so ``ablation_variant_size`` (0: none) repeats the seeds at a second
size, with the rate chosen at the first (the grid is not run twice: its cost would double).

The choice is written to ``results/<profile>/train/ablation_lr.json`` next to the runs. Each run is
an ordinary ``train``/``evaluate`` command (:func:`helpers.classify.backbones.trial_args`), in its
own folder; the book's pipeline lists the grid first and the seeds once the grid has run.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from ..classify import backbones, eval_files
from ..classify.train import run_dir, run_folder
from ..core.files import atomic_write_text
from ..core.profiles import lr_grid

CHOICE_FILE = "ablation_lr.json"
CRITERION = "lowest best validation loss of the run; ties: the smaller learning rate"


@dataclass(frozen=True)
class Trial:
    """One run of Table 3: a backbone at an input side, a learning rate and a seed."""

    key: str
    img_size: int
    lr: float
    seed: int

    def options(self) -> dict:
        return {"img_size": self.img_size, "lr": self.lr, "seed": self.seed}

    def args(self, profile) -> tuple[str, ...]:
        """``train``'s and ``evaluate``'s arguments for this run."""
        return backbones.trial_args(profile, self.key, **self.options())

    def folder(self, profile) -> Path:
        return run_dir(profile, model=self.key, **self.options())

    def eval_name(self, profile) -> str:
        """The evaluation ``evaluate ARGS`` writes for the test split."""
        return eval_files.eval_name(self.folder(profile) / "best.pt", "test")


def sizes(profile) -> list[int]:
    """The input sides of Table 3: ``train_img_size``, then the variant if there is one."""
    variant = profile.ablation_variant_size
    return [profile.train_img_size] + ([variant] if variant and variant != profile.train_img_size else [])


def seeds(profile) -> list[int]:
    return [profile.seed + i for i in range(profile.ablation_seeds)]


def grid(profile, key: str) -> list[Trial]:
    """The grid of one backbone: each learning rate at ``train_img_size`` with the profile's seed."""
    return [Trial(key, profile.train_img_size, lr, profile.seed) for lr in lr_grid(profile.ablation_lr_grid)]


def finished_metrics(profile, folder: Path) -> pd.DataFrame | None:
    """A run's ``metrics.csv`` once the run is over (all epochs, or stopped early), else None."""
    path = folder / "metrics.csv"
    if not path.exists():
        return None
    m = pd.read_csv(path)
    if m.empty:
        return None
    best = int(m["val_loss"].fillna(math.inf).to_numpy().argmin())
    stopped = len(m) - 1 - best >= profile.train_patience
    return m if stopped or len(m) >= profile.train_epochs else None


def _grid_record(profile, trial: Trial) -> dict:
    folder = trial.folder(profile)
    m = finished_metrics(profile, folder)
    record = {"run": folder.name, "finished": m is not None}
    if m is not None:
        losses = m["val_loss"].fillna(math.inf)
        record |= {"best_val_loss": float(losses.min()), "best_epoch": int(m.loc[losses.idxmin(), "epoch"]),
                   "epochs": len(m)}
    return record


def choose(profile, write: bool = False) -> dict:
    """Per backbone, every grid run's best validation loss and the chosen learning rate (None until
    every run of its grid has finished); with ``write``, also ``train/ablation_lr.json``."""
    out = {"criterion": CRITERION, "img_size": profile.train_img_size, "seed": profile.seed,
           "grid": lr_grid(profile.ablation_lr_grid), "backbones": {}}
    for key in backbones.LABELS:
        runs = {backbones.lr_text(t.lr): _grid_record(profile, t) | {"lr": t.lr} for t in grid(profile, key)}
        done = all(r["finished"] for r in runs.values())
        chosen = min(runs.values(), key=lambda r: (r["best_val_loss"], r["lr"]))["lr"] if done else None
        out["backbones"][key] = {"runs": runs, "chosen_lr": chosen}
    if write:
        atomic_write_text(choice_path(profile), json.dumps(out, indent=2))
    return out


def choice_path(profile) -> Path:
    return run_folder(profile, CHOICE_FILE)


def chosen_trials(profile, key: str, size: int, choice: dict | None = None) -> list[Trial]:
    """The seeds of the chosen learning rate of ``key`` at ``size`` (none before the grid has run)."""
    lr = (choice or choose(profile))["backbones"][key]["chosen_lr"]
    return [] if lr is None else [Trial(key, size, lr, s) for s in seeds(profile)]


def grid_steps(profile) -> list[tuple[str, tuple[str, ...]]]:
    """``(command, args)`` of the grid: one training run per backbone and learning rate."""
    return [("train", t.args(profile)) for key in backbones.KEYS for t in grid(profile, key)]


def seed_steps(profile) -> list[tuple[str, tuple[str, ...]]]:
    """``(command, args)`` once the grid has run: each chosen rate's seeds at every size, trained
    (the grid's run is the first seed, not trained again) and evaluated on the test split.
    Writes the choice."""
    choice, out = choose(profile, write=True), []
    for size in sizes(profile):
        for key in backbones.KEYS:
            trained = set(grid(profile, key))
            for trial in chosen_trials(profile, key, size, choice):
                out += [("train", trial.args(profile))] if trial not in trained else []
                out.append(("evaluate", trial.args(profile)))
    return out


def count_runs(profile) -> dict[str, int]:
    """How many trainings Chapter 5 costs: the grid, the chosen rates' further seeds, the variant,
    and the one run it shares with Chapter 4 (ConvNeXt at ``train_lr`` and the profile's seed)."""
    n_keys, n_seeds = len(backbones.KEYS), profile.ablation_seeds
    out = {"grid": n_keys * len(lr_grid(profile.ablation_lr_grid)), "more seeds": n_keys * (n_seeds - 1),
           "variant size": n_keys * n_seeds * (len(sizes(profile)) - 1),
           "shared with Chapter 4": int(profile.train_lr in lr_grid(profile.ablation_lr_grid))}
    out["new trainings"] = out["grid"] + out["more seeds"] + out["variant size"] - out["shared with Chapter 4"]
    return out
