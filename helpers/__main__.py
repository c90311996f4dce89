"""Every chapter: ``python -m helpers COMMAND --profile P``, the book's long jobs, from a notebook or a shell."""

from __future__ import annotations

import argparse
import sys
import time

from . import augment
from .core import steps
from .core.download import DownloadError
from .core.paths import UnsafePathError
from .core.profiles import SD2_768, ProfileError, add_profile_arguments, get_profile, parse_sets
from .core.stamps import StaleOutputError
from .core.steps import StepFailed
from .data import real_data
from .data.controls import ControlError
from .data.manifest import ManifestError
from .data.real_data import DataError
from .inpaint import score_cli
from .inpaint.masks import MaskError
from .rehearsal.hub import component_configs

# What `python -m helpers --help` says first.
DESCRIPTION = "``python -m helpers COMMAND --profile P``: the book's long jobs, from a notebook or a shell."
# Errors whose message already says what to do: printed without a traceback.
KNOWN_ERRORS = (DownloadError, ManifestError, UnsafePathError, StaleOutputError, DataError, MaskError, StepFailed,
                augment.AugmentError, ControlError)


def _known_errors():
    """:data:`KNOWN_ERRORS` and those of the steps that load torch (imported once a command runs,
    so that ``--help`` and a bad profile answer at once)."""
    from .classify import EvaluateError, TrainError
    from .classify.gradcam import GradCamError
    from .core.checkpoints import CheckpointError
    from .data.generate import GenerationError
    from .inpaint.step import InpaintError
    return KNOWN_ERRORS + (CheckpointError, EvaluateError, GenerationError, InpaintError, TrainError, GradCamError)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m helpers", description=DESCRIPTION)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("run", help="every step of the book in order (make run), then build the book to render them")
    add_profile_arguments(p)
    p.add_argument("--only", type=int, action="append", default=None, metavar="CHAPTER",
                   help="only this chapter's steps (repeatable)")

    p = sub.add_parser("data", help="sample the splits, fetch and preprocess the real photographs")
    add_profile_arguments(p)

    p = sub.add_parser("generate", help="generate images from captions (launch with torchrun for N GPUs)")
    add_profile_arguments(p)
    p.add_argument("--limit", type=int, default=None, help="at most this many images per rank (a trial)")

    p = sub.add_parser("augment", help="Algorithm 1: augmented generated training images (Chapter 2)")
    add_profile_arguments(p)
    p.add_argument("--both-classes", action="store_true",
                   help="also augment as many real training images (the one-class shortcut's control)")

    p = sub.add_parser("inpaint", help="inpaint real and generated images with one model, and score (Chapter 3)")
    add_profile_arguments(p)
    from .inpaint.step import MODELS
    p.add_argument("--model", required=True, choices=MODELS)
    p.add_argument("--masks", default=None, metavar="objects|free_form|DIR",
                   help="COCO object outlines (object removal), seeded free-form strokes, or a folder of masks "
                        "(default: the profile's inpaint_masks: objects in course and paper, free_form in smoke)")

    p = sub.add_parser("controls", help="the images of Chapter 4's training-time controls and of its "
                       "augmentation probe; with --evaluate, the controls' and the probe's evaluations")
    add_profile_arguments(p)
    p.add_argument("--evaluate", action="store_true",
                   help="score each trained control on its own test rows, and run the augmentation probe")

    add_profile_arguments(sub.add_parser("gradcam", help="Grad-CAM maps of Chapter 4's model and their share "
                                         "on COCO's objects: results/<profile>/gradcam/ (Chapter 6)"))
    from .classify import evaluate, probe, train
    train.add_parser(sub)
    evaluate.add_parser(sub)
    from .classify import robustness
    robustness.add_parser(sub)
    probe.add_parser(sub)
    score_cli.add_parser(sub)

    from .classify import bench
    bench.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser().parse_args(argv)
    if args.command == "score":  # a reader's own images: no profile, no step record
        return score_cli.main(args)
    started = time.perf_counter()
    try:
        profile = get_profile(args.profile, parse_sets(args.set))
        code = _dispatch(args, profile)
    except ProfileError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except _known_errors() as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if code == 0 and args.command != "run":
        steps.record_done(profile, argv, time.perf_counter() - started)
    return code


def _dispatch(args, profile) -> int:
    """Run one command; its return code (0 when it went well)."""
    if args.command == "robustness":
        from .classify import robustness
        return robustness.main(args, profile)
    if args.command == "probe":
        from .classify import probe
        return probe.main(args, profile)
    if args.command in ("evaluate", "predict"):
        from .classify import evaluate
        return evaluate.main(args, profile)
    if args.command == "run":
        from .book import pipeline
        pipeline.run(profile, parse_sets(args.set), only=args.only)
    elif args.command == "data":
        real_data.run(profile)
    elif args.command == "generate":
        from .data import generate
        generate.run(profile, limit=args.limit)
    elif args.command == "augment":
        augment.step.run(profile, both_classes=args.both_classes)
    elif args.command == "inpaint":
        from .inpaint import step as inpaint_step
        inpaint_step.run(profile, args.model, mask_mode=args.masks)
    elif args.command == "train":
        from .classify import train
        train.run(profile, control=args.control, deterministic=args.deterministic, model=args.model,
                  variant=args.variant, robust=args.robust_aug, **train.trial_options(args))
    elif args.command == "controls":
        from .classify import controls, controls_data
        controls.run(profile) if args.evaluate else controls_data.run(profile)
    elif args.command == "gradcam":
        from .classify import gradcam_step
        gradcam_step.run(profile)
    elif args.command == "bench":
        from .classify import bench
        if args.what == "train":
            changes = {k: v for k, v in (("train_model", args.model), ("train_img_size", args.img_size)) if v}
            profile = get_profile(profile.name, parse_sets(args.set) | changes)
        if args.what == "all":
            from .classify import gpu_bench
            gpu_bench.run(args.out, small=True if args.small else None, sd_configs=component_configs(SD2_768),
                          compile=True if args.compile else None)
        else:
            bench.run(args.what, profile, n_images=args.images, compile=args.compile)
    return 0


if __name__ == "__main__":
    sys.exit(main())
