"""Every chapter: every long step of the book, in the chapters' order (``make run`` / ``python -m helpers run``).

The ``paper`` profile's steps take hours (generation of 10,400 images at 768 px, ConvNeXt-XL for up
to 200 epochs), longer than any notebook cell should run. So a GPU box runs them first, from a
shell, resumable, with torchrun where they use several GPUs; then ``make book`` renders the chapters
from the finished steps (:func:`helpers.book.chapter.run_step` shows each step's record). The list here
is exactly the calls the chapters make, with the same arguments, so that each chapter finds the
record of every step it shows.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass

import torch

from ..classify.train import run_dir
from ..core import steps as steps_record
from ..core.distributed import launch_processes
from . import ch4_controls, ch5_runs, ch5_transfer, ch6_gradcam, ch6_robustness, chapter


@dataclass(frozen=True)
class Step:
    chapter: int
    command: str
    args: tuple[str, ...] = ()
    nproc: int = 1


def _generation_processes() -> int:
    """Generation shards over every GPU; on a CPU one process (two would share its cores)."""
    return torch.cuda.device_count() if torch.cuda.is_available() else 1


def steps(profile) -> Iterator[Step]:
    """The steps of Chapters 1-6, in order. A generator: Chapter 5's seeds are listed only once its
    learning-rate grid has run (they train the rate it chose), and its transfer steps only once the
    earlier steps have run (smoke's stand-in folders are made from Chapter 1's plan)."""
    nproc = launch_processes()
    out = [Step(1, "data"), Step(1, "generate", nproc=_generation_processes()),
           Step(1, "bench", ("data",)), Step(1, "bench", ("generate",)),
           Step(2, "augment", ("--both-classes",))]
    out += [Step(3, "inpaint", ("--model", m)) for m in profile.inpaint_model_list]
    control_best = str(run_dir(profile, control=True) / "best.pt")
    out += [Step(4, "train", nproc=nproc), Step(4, "evaluate"),
            Step(4, "train", ("--control",), nproc=nproc), Step(4, "evaluate", ("--checkpoint", control_best))]
    out += [Step(4, command, args, nproc=nproc if command == "train" else 1)
            for command, args in ch4_controls.steps(profile)]  # the training-time controls and the probe
    out += [Step(4, "bench", ("train",))]
    out += [Step(5, command, args, nproc=nproc) for command, args in ch5_runs.grid_steps(profile)]  # Table 3's grid
    yield from out
    # the seeds of each backbone's learning rate, chosen on validation once the grid has run
    yield from (Step(5, command, args, nproc=nproc if command == "train" else 1)
                for command, args in ch5_runs.seed_steps(profile))
    folders = ch5_transfer.prepare(profile)
    yield from (Step(5, "evaluate", args) for args in ch5_transfer.evaluations(profile, folders))
    yield Step(5, "predict", (str(ch5_transfer.predict_target(profile, folders)),))
    yield from chapter6(profile, nproc)


def chapter6(profile, nproc: int) -> Iterator[Step]:
    """Chapter 6, after Chapter 5's runs (its curves score Table 3's chosen runs, its Grad-CAM grid
    the transfer images called real): the blur + JPEG training, the CLIP probe, every curve, Grad-CAM."""
    yield Step(6, "train", ("--robust-aug",), nproc=nproc)
    yield Step(6, "probe")
    yield from (Step(6, command, args) for command, args in ch6_robustness.steps(profile))
    yield from (Step(6, command, args) for command, args in ch6_gradcam.steps(profile))


def run(profile, overrides: dict | None = None, only: list[int] | None = None) -> None:
    """Run every step (or those of the chapters in ``only``), each skipping what is already done."""
    started, done = time.perf_counter(), 0
    for step in steps(profile):
        if only and step.chapter not in only:
            continue
        done += 1
        print(f"\n[step {done}] Chapter {step.chapter}", flush=True)
        chapter.launch(step.command, profile, overrides, *step.args, nproc=step.nproc, stream=True)
    print(f"\nall {done} steps of profile '{profile.name}' finished in "
          f"{(time.perf_counter() - started) / 60:.1f} min; now `make book PROFILE={profile.name}` "
          f"renders the chapters from them")


def prerequisites(profile, overrides: dict | None, before: int) -> None:
    """Run every step of the chapters before ``before`` that has not finished with these settings
    (its record, :mod:`helpers.core.steps`), so that a chapter that reads all of them can be run,
    or built, on its own; a finished step is not launched again (dozens of them, each a new Python
    process, would cost minutes of nothing)."""
    done = ran = 0
    for step in steps(profile):
        if step.chapter >= before:
            break
        if steps_record.finished(profile, [step.command, *step.args]) is not None:
            done += 1
            continue
        chapter.run_step(step.command, profile, overrides, *step.args, tail=1, nproc=step.nproc)
        ran += 1
    print(f"Chapters 1-{before - 1}: {done} steps had finished with these settings, {ran} ran now")
