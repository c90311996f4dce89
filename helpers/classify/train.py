"""Chapter 4: the ``train`` step: fine-tune the classifier, on one process or one per GPU.

``torchrun --nproc_per_node=N -m helpers train --profile P [--model KEY] [--control] [--set KEY=VALUE ...]``
(plain ``python -m helpers train`` is a world of one).

- data: the training rows of Chapter 2 (``augment.training_set``: the paper's way, or with
  ``--control`` the both-classes control), else the manifest's training split when no augmented
  rows exist yet; validation is the manifest's ``val`` split (originals only)
  (:mod:`helpers.classify.loaders`);
- the global batch ``train_batch`` is made of ``train_micro_batch`` images per process per
  micro-step, accumulated over ``train_batch / (train_micro_batch x processes)`` micro-steps, with
  the gradients synchronised between processes once per optimizer step (DDP ``no_sync``)
  (:mod:`helpers.classify.batches`, :mod:`helpers.classify.loop`);
- the loss of an optimizer step is the mean over all its images, whatever the number of processes
  and micro-steps: 2 processes x 4 images give the step of 1 process x 8 images;
- each epoch trains, validates (metrics summed over processes), and rank 0 writes
  ``results/<profile>/train/<run>/``: ``metrics.csv``, ``last.pt`` (everything needed to go on)
  and ``best.pt`` (the weights of the lowest validation loss), each atomically
  (:mod:`helpers.classify.checkpointing`, :mod:`helpers.classify.records`);
- early stopping: training stops after ``train_patience`` epochs without a lower validation loss;
- ``last.pt`` is also saved in mid-epoch every ``train_checkpoint_minutes`` and on SIGTERM
  (:mod:`helpers.classify.preemption`); a run stopped at any moment resumes from its last save
  when started again, in mid-epoch on the same batches; on a CPU it ends with the same metrics
  and weights as a run never stopped. A finished run says so.

``<run>`` is ``paper`` or ``control`` for Chapter 4's model, the control's name for its
training-time controls (``--variant compression-matched|scale-matched|null``: the images of the
``controls`` step, :mod:`helpers.classify.controls_data`), and ``vgg16``, ``resnet50``,
``efficientnet_b0`` (``...-control``) for the other backbones of Table 3 (``--model``, Chapter 5:
:mod:`helpers.classify.backbones`), with ``-224px``, ``-lr3e-5``, ``-seed2025`` added for a run of
Chapter 5's grid and seeds (``--img-size``, ``--lr``, ``--seed``), and ``robust`` for Chapter 6's
robust-training variant (``--robust-aug``: CNNDetection's blur + JPEG augmentation on both classes,
drawn per image from the seed, the epoch and the index, :mod:`helpers.classify.degrade`).
``metrics.csv`` also holds each epoch's peak memory: on a GPU what PyTorch allocated on rank 0's
device, on a CPU the rank-0 process's peak resident size.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
from contextlib import contextmanager
from pathlib import Path

import pandas as pd

from . import backbones
from ..core import distributed
from ..core.paths import data_root, inside, results_root
from ..core.profiles import add_profile_arguments
from ..data.controls import CONTROLS
from ..data import manifest as mf
from .batches import batch_plan
from .checkpointing import check_room, load_checkpoint, restore, save_best, save_last
from .dataset import DamagedImage, check_files, damaged_message
from .degrade import RobustAugment
from .loaders import robust_training, training_rows, validation_rows, variant_rows
from .loop import end_epoch, epoch_clock, stop_reason, train_epoch, validate
from .prepare import determinism, setup
from .preemption import SaveClock, mid_epoch_saver
from .records import check_settings, epoch_line, log_tensorboard, run_settings, start_line, write_config, write_metrics
from .trainer import Trainer, TrainError

ROBUST_RUN = "robust"  # the run folder of ``--robust-aug`` (Chapter 6)


def run_folder(profile, name: str) -> Path:
    """``results/<profile>/train/<name>``: where the run ``name`` keeps its checkpoints and metrics."""
    return results_root(profile.name) / "train" / name


def run_dir(profile, control: bool = False, model: str = backbones.DEFAULT, **trial) -> Path:
    """The run of ``model`` (and of its control): ``paper``, ``control``, ``vgg16``, ``vgg16-control``...;
    ``trial``: Chapter 5's ``img_size``, ``lr``, ``seed`` (:func:`helpers.classify.backbones.run_suffix`)."""
    return run_folder(profile, backbones.run_name(model, control, backbones.run_suffix(profile, **trial)))


def run(profile, control: bool = False, deterministic: bool = False,
        model: str = backbones.DEFAULT, variant: str | None = None, robust: bool = False,
        **trial) -> pd.DataFrame | None:
    """Train (or resume, or report a finished run); rank 0 returns the metrics table.

    ``model`` picks one of Table 3's backbones (:mod:`helpers.classify.backbones`), each in its own run
    folder; ``trial`` (``img_size``, ``lr``, ``seed``) one run of Chapter 5's grid and seeds.
    ``variant`` trains Chapter 4's model on a control's images, in the run folder of that name;
    ``robust`` trains it with CNNDetection's blur + JPEG augmentation, in the run folder ``robust``.
    """
    if variant and (control or model != backbones.DEFAULT or any(v is not None for v in trial.values())):
        raise TrainError(f"--variant {variant} trains Chapter 4's model on a control's images: it goes "
                         f"without --control, --model and Chapter 5's options")
    if robust and (variant or control or model != backbones.DEFAULT or any(v is not None for v in trial.values())):
        raise TrainError("--robust-aug trains Chapter 4's model with blur + JPEG augmentation on both classes: "
                         "it goes without --control, --variant, --model and Chapter 5's options")
    out = (run_folder(profile, variant or ROBUST_RUN) if (variant or robust)
           else run_dir(profile, control, model, **trial))
    profile = backbones.for_model(profile, model, **trial)
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # before cuBLAS starts
    world = distributed.init()
    plan = batch_plan(profile, world.size)
    if plan.note and world.is_main:
        print(f"note: {plan.note}", flush=True)
    profile = dataclasses.replace(profile, train_batch=plan.global_batch, train_micro_batch=plan.micro_batch)
    try:
        with determinism(world.device, deterministic) as det:
            return _run(profile, world, control, det, out, variant, robust)
    finally:
        distributed.finish()


@contextmanager
def damaged_images_stop_training(last: Path):
    """A damaged image, found before the first epoch or by the DataLoader (in a worker or not),
    stops training with the file and its repair named; the finished epochs stay in ``last``."""
    try:
        yield
    except DamagedImage as exc:
        kept = f"; the finished epochs are kept in {last} and the next run resumes from them" \
            if last.exists() else ""
        raise TrainError(f"{damaged_message(exc)}. Training stopped{kept}.") from None


def _run(profile, world, control: bool, deterministic: bool, out: Path,
         variant: str | None = None, robust: bool = False) -> pd.DataFrame | None:
    last, best, metrics = out / "last.pt", out / "best.pt", out / "metrics.csv"
    tr = _start_or_resume(profile, world, control, out, variant, robust)
    if stop_reason(tr):
        return _already_finished(tr, out, metrics)
    if world.is_main:
        check_room(tr, out)  # the other ranks are stopped by torchrun when this one raises
        write_config(profile, world, control, deterministic, tr.settings, out, tr.epoch)
        print(start_line(tr, out), flush=True)
    clock = SaveClock(profile.train_checkpoint_minutes, world)
    while not stop_reason(tr):
        epoch = tr.epoch + 1
        started = epoch_clock(world.device)
        with damaged_images_stop_training(last), clock.listening():
            stats = train_epoch(tr, epoch, mid_epoch_saver(tr, last, clock))
            val_loss, val_acc = validate(tr)
        improved = end_epoch(tr, epoch, stats, val_loss, val_acc, started)
        if world.is_main:
            # best first, then last (with the history), then the table: a stop between two
            # writes resumes from the previous last.pt and redoes this epoch identically
            if improved:
                save_best(tr, best)
            save_last(tr, last, finished=bool(stop_reason(tr)))
            write_metrics(tr.history, metrics)
            log_tensorboard(out, tr.history[-1])
            print(epoch_line(tr, improved), flush=True)
    distributed.barrier()
    if world.is_main:
        print(f"done: {stop_reason(tr)}; {metrics}, best weights {best}")
        return pd.read_csv(metrics)
    return None


def _rows(profile, world, control: bool, last: Path,
          variant: str | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The training and validation rows, their files' headers checked before the first epoch."""
    frame = mf.load(profile.name)
    train_rows, val_rows = (variant_rows(profile, variant) if variant else
                            (training_rows(profile, frame, control), validation_rows(frame)))
    if train_rows.empty:
        raise TrainError(f"no training images in the manifest of '{profile.name}': run the data, "
                         f"generate (and augment) steps first")
    with damaged_images_stop_training(last):
        check_files(inside(data_root(), p) for p in pd.concat([train_rows, val_rows])["path"])
    if world.is_main and not frame.source.isin(mf.AUGMENTED_SOURCES).any():
        print(f"note: no augmented images in the manifest of '{profile.name}' (Chapter 2's "
              f"`python -m helpers augment`): training on the training split as it is")
    return train_rows, val_rows


def _start_or_resume(profile, world, control: bool, out: Path, variant: str | None = None,
                     robust: bool = False) -> Trainer:
    """The run's state: fresh, or from ``last.pt`` when it was started with the same settings."""
    last = out / "last.pt"
    train_rows, val_rows = _rows(profile, world, control, last, variant)
    augment = RobustAugment(profile.seed) if robust else None
    settings = run_settings(profile, control, train_rows, val_rows, variant) | \
        ({"robust_aug": augment.settings()} if augment else {})
    ckpt = load_checkpoint(last) if last.exists() else None
    if ckpt is not None:
        check_settings(ckpt["settings"], settings, out)
    tr = setup(profile, world, control, train_rows, val_rows, settings, resuming=ckpt is not None)
    if augment is not None:
        robust_training(tr.train_loader, tr.sampler, augment)
    if ckpt is not None:
        restore(tr, ckpt)
        if ckpt["optimizer"] is None and not stop_reason(tr):
            raise TrainError(f"the run in {out} finished and kept no optimizer state (it was trained with "
                             f"train_keep_finished_optimizer=0), so it cannot go on for more epochs: "
                             f"delete {out} to train it afresh with these settings")
        if int(ckpt.get("world_size", world.size)) != world.size and world.is_main:
            print(f"note: {out} was trained on {ckpt['world_size']} processes and goes on with "
                  f"{world.size}: the same global batch, another order of images")
    return tr


def _already_finished(tr: Trainer, out: Path, metrics: Path) -> pd.DataFrame | None:
    """A finished run trains nothing: it says so, and rank 0 returns its table."""
    if not tr.world.is_main:
        return None
    print(f"run {out} is finished: {stop_reason(tr)}; nothing to do (delete it to train again)")
    return write_metrics(tr.history, metrics)


# ---------------------------------------------------------------- command line

def add_arguments(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    add_profile_arguments(p, "train_micro_batch=2")
    p.add_argument("--model", choices=backbones.KEYS, default=backbones.DEFAULT,
                   help="the backbone (Chapter 5's Table 3): convnext is the profile's train_model, "
                        "the others come from its ablation_models; each has its own run folder")
    add_trial_arguments(p)
    p.add_argument("--control", action="store_true",
                   help="train on the both-classes augmented set (the shortcut's control), run 'control'")
    p.add_argument("--variant", choices=CONTROLS, default=None,
                   help="a training-time control of Chapter 4 (the images of `python -m helpers controls`), "
                        "in the run folder of its name")
    p.add_argument("--robust-aug", action="store_true",
                   help="Chapter 6: train Chapter 4's model with blur + JPEG augmentation on both classes "
                        "(CNNDetection's recipe), run 'robust'")
    p.add_argument("--deterministic", action="store_true",
                   help="deterministic algorithms on a GPU too (always on a CPU); slower")
    return p


def add_trial_arguments(p: argparse.ArgumentParser) -> None:
    """``--img-size``, ``--lr``, ``--seed`` (Chapter 5): one run of the grid or of the seeds, in its own folder."""
    p.add_argument("--img-size", type=int, default=None, metavar="PX",
                   help="input side (default: the profile's train_img_size); the run's folder says it")
    p.add_argument("--lr", type=float, default=None, help="Adam's learning rate (default: train_lr)")
    p.add_argument("--seed", type=int, default=None, help="the run's seed (default: the profile's seed)")


def trial_options(args: argparse.Namespace) -> dict:
    """``{"img_size", "lr", "seed"}`` of a parsed ``train`` or ``evaluate`` command."""
    return {"img_size": args.img_size, "lr": args.lr, "seed": args.seed}


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Register ``train`` with ``python -m helpers``'s sub-commands."""
    p = subparsers.add_parser("train", help="fine-tune the classifier (Chapter 4; torchrun for N GPUs)",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    return add_arguments(p)
