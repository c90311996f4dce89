"""Chapters 4-5: the ``evaluate`` and ``predict`` commands: P(generated) for images, metrics, the shortcut check.

``python -m helpers evaluate --profile P [--model KEY] [--checkpoint PATH]
[--images DIR --label generated|real [--real test|DIR] [--categories CSV]] [--reencode jpeg:75|resize:256]``

scores the manifest's test split (originals only) with a trained classifier, or every readable
image of a folder (all given one label: the paper's DALL-E 2 and Imagen transfer figures), and
writes ``results/<profile>/eval/<name>/predictions.csv`` (path, label, p_generated, predicted) and
``metrics.json`` (:mod:`helpers.classify.evaluation`). ``--model`` picks one of Table 3's
backbones (:mod:`helpers.classify.backbones`) and its run's ``best.pt``; ``--img-size``, ``--lr``
and ``--seed`` pick one run of Chapter 5's grid and seeds, as ``train`` took them (the images
are fed at that run's input side).

A folder of generated images alone gives one number, the share called generated: the paper's
DALL-E 2 and Imagen figures. Balanced accuracy, ROC-AUC and AP need real images too and are
refused without them; ``--real test`` adds the study's real test photographs, ``--real DIR`` a
folder of photographs matched to the generated ones. ``--categories CSV`` (columns ``file``,
``category``) breaks the result down by kind of image (photo, artwork, illustration...).

``--reencode`` is the shortcut check (:mod:`helpers.classify.reencode`): both classes re-encoded
before prediction; a classifier that learned content keeps its accuracy, one that learned a
trace of the file format loses it.

``python -m helpers predict PATH... [--checkpoint C] [--csv OUT]`` prints P(generated) for images or
folders of images; files that cannot be read are listed with their reason, never a crash.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

from . import backbones
from ..core.files import atomic_write_text
from ..core.paths import shown
from ..core.profiles import add_profile_arguments
from ..data import manifest as mf
from .categories import category_table, load_categories
from .classifier import EvaluateError
from .eval_files import two_class_metrics
from .evaluation import evaluate
from .prediction import predict_paths
from .train import add_trial_arguments, run_dir, trial_options

SHOWN = ("n_real", "n_generated", "accuracy", "balanced_accuracy", "roc_auc", "average_precision",
         "accuracy_real", "accuracy_generated", "tn", "fp", "fn", "tp")


def _add_classifier_arguments(p: argparse.ArgumentParser, model_help: str) -> None:
    add_profile_arguments(p, "train_img_size=224")
    p.add_argument("--model", choices=backbones.KEYS, default=backbones.DEFAULT, help=model_help)
    p.add_argument("--checkpoint", default=None, metavar="PATH",
                   help="the trained weights (default: results/<profile>/train/<run>/best.pt)")
    add_trial_arguments(p)


def trial_run(args: argparse.Namespace, profile):
    """``(checkpoint, profile)`` of the run that ``--model``/``--img-size``/``--lr``/``--seed`` name
    (Chapter 5): its ``best.pt`` (unless ``--checkpoint`` gives one) and the profile at its input side."""
    trial = trial_options(args)
    if all(v is None for v in trial.values()):
        return args.checkpoint, profile
    checkpoint = args.checkpoint
    if checkpoint is None:
        checkpoint = run_dir(profile, model=args.model, **trial) / "best.pt"
        if not checkpoint.is_file():
            command = " ".join(backbones.trial_args(profile, args.model, **trial))
            raise EvaluateError(f"{shown(str(checkpoint))} does not exist: train that run first (`python -m helpers "
                                f"train --profile {profile.name} {command}`)")
    if trial["img_size"] is not None:
        profile = dataclasses.replace(profile, train_img_size=trial["img_size"])
    return checkpoint, profile


def add_parser(subparsers) -> None:
    """Register the ``evaluate`` and ``predict`` commands on ``python -m helpers``'s subparsers."""
    p = subparsers.add_parser("evaluate", help="score the test split (or a folder) with a trained "
                              "classifier: predictions.csv, metrics.json (Chapter 4)")
    _add_classifier_arguments(p, "the backbone of Table 3 whose run to evaluate (Chapter 5)")
    p.add_argument("--images", default=None, metavar="DIR",
                   help="score every image of this folder instead of the test split (needs --label)")
    p.add_argument("--label", choices=list(mf.LABELS), default=None,
                   help="the true class of every image of --images")
    p.add_argument("--real", default=None, metavar="test|DIR",
                   help="with --label generated: add matched photographs (the test split's, or a "
                        "folder) so that balanced accuracy, ROC-AUC and AP are defined")
    p.add_argument("--categories", default=None, metavar="CSV",
                   help="a CSV of file,category: the result broken down by category")
    p.add_argument("--reencode", default=None, metavar="jpeg:75|resize:256",
                   help="the shortcut check: re-encode both classes before prediction")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--force", action="store_true", help="predict again even if the results exist")

    p = subparsers.add_parser("predict", help="P(generated) for image files or folders of images")
    p.add_argument("paths", nargs="+", metavar="PATH", help="image files and/or folders of images")
    _add_classifier_arguments(p, "the backbone of Table 3 the checkpoint belongs to")
    p.add_argument("--csv", default=None, metavar="OUT", help="write the table here instead of printing it")
    p.add_argument("--as-is", action="store_true",
                   help="skip bringing the images to the study's common format (side, JPEG) first")
    p.add_argument("--batch-size", type=int, default=16)


def _print_metrics(result: dict) -> None:
    m = result["metrics"]
    print(f"evaluation {result['name']}:")
    for k in SHOWN:
        v = m[k]
        print(f"  {k:<20} {'-' if v is None else (f'{v:.4f}' if isinstance(v, float) else v)}")
    ci = result.get("accuracy_ci95")
    if ci:
        print(f"  accuracy 95% interval {ci['low']:.4f} .. {ci['high']:.4f} (bootstrap)")
    if m.get("note"):
        print(f"  note: {m['note']}")
    try:
        two_class_metrics(result)
    except EvaluateError as exc:
        print(f"  balanced accuracy, ROC-AUC, AP: refused. {exc}")
    print(f"files: {result['dir'] / 'predictions.csv'}, {result['dir'] / 'metrics.json'}")


def _evaluate_command(args: argparse.Namespace, profile) -> int:
    categories = load_categories(args.categories) if args.categories else None
    checkpoint, profile = trial_run(args, profile)
    result = evaluate(profile, checkpoint, args.images, args.label, args.reencode, real=args.real,
                      model=args.model, batch_size=args.batch_size, force=args.force)
    _print_metrics(result)
    if categories is not None:
        table = category_table(result, categories)
        atomic_write_text(result["dir"] / "categories.csv", table.to_csv())
        print(table.to_string(float_format=lambda v: f"{v:.4f}"))
        print(f"file: {result['dir'] / 'categories.csv'}")
    return 0


def _predict_command(args: argparse.Namespace, profile) -> int:
    checkpoint, profile = trial_run(args, profile)
    table = predict_paths(profile, checkpoint, args.paths, as_is=args.as_is,
                          batch_size=args.batch_size, model=args.model)
    bad = table[table["reason"] != ""]
    if args.csv:
        mf.write_csv(table, Path(args.csv))
        print(f"{len(table) - len(bad)} images scored: {args.csv}")
    else:
        good = table[table["reason"] == ""][["path", "p_generated", "predicted"]]
        print(good.to_string(index=False, float_format=lambda v: f"{v:.4f}") if len(good)
              else "no image could be scored")
    if len(bad):
        print(f"{len(bad)} not scored:", file=sys.stderr)
        for row in bad.itertuples():
            print(f"  {row.path}: {row.reason}", file=sys.stderr)
    return 0 if len(bad) < len(table) else 1


def main(args: argparse.Namespace, profile) -> int:
    """Run the parsed ``evaluate`` or ``predict`` command for ``profile`` (``python -m helpers``
    prints the errors that say what to do); 1 when ``predict`` could score no file."""
    if args.command == "evaluate":
        return _evaluate_command(args, profile)
    return _predict_command(args, profile)
