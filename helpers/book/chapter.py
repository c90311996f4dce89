"""Every chapter: set-up, running a step's command (or showing its record), and handing figures to the book.

A notebook cell stays a few lines long; the work is here or in the commands.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
import time
import warnings
from pathlib import Path

import matplotlib.pyplot as plt

from ..core import steps
from ..core.paths import results_root, shown
from ..core.profiles import Profile, get_profile, to_sets
from ..core.steps import made_from_standins
from . import live


def setup(profile: str | None = None, overrides: dict | None = None) -> Profile:
    """The chapter's profile, printed, with a warning when its results are only pipeline checks."""
    p = get_profile(profile, overrides)
    quiet_warnings()
    print(p.describe())
    if p.name == "smoke":
        print("\nSMOKE PROFILE: stand-in photographs and tiny random models.\n"
              "Every number below checks that the pipeline runs; none is a finding\n"
              "about real or generated images.")
    elif made_from_standins(p.name):
        print(f"\nREHEARSAL of '{p.name}': the real code against stand-ins at the real addresses\n"
              "(random weights of the real architectures, a COCO look-alike, smaller counts).\n"
              "Every number below checks that the pipeline runs; none is a finding.")
    return p


def _warning_line(message, category, filename, lineno, line=None) -> str:
    """A warning as Python prints it, its file named from the book's root or from site-packages."""
    where = shown(filename)
    if os.path.isabs(where) and "site-packages" in where:
        where = where[where.index("site-packages"):]
    return f"{where}:{lineno}: {category.__name__}: {message}\n"


def quiet_warnings() -> None:
    """A chapter's page shows no path of the machine that built it, warnings included; and no tqdm
    warning about notebook widgets (the book's cells draw no progress bars of their own)."""
    warnings.formatwarning = _warning_line
    warnings.filterwarnings("ignore", message="IProgress not found")


class StepNotDone(RuntimeError):
    """A chapter built before its long step has finished (``paper``: steps run outside the build).

    IPython shows only the message (``_render_traceback_``): the rendered chapter says what is
    missing and which command makes it, instead of a traceback or a cell that runs for hours.
    """

    def _render_traceback_(self) -> list[str]:
        return str(self).splitlines()


def _launcher(nproc: int, torchrun: str = "torchrun", python: str = "python") -> list[str]:
    return [torchrun, "--standalone", f"--nproc_per_node={nproc}"] if nproc > 1 else [python]


def _argv(command: str, profile: Profile, overrides: dict | None, args) -> list[str]:
    return [command, *args, "--profile", profile.name, *to_sets(overrides)]


def command_line(command: str, profile: Profile, overrides: dict | None, args, nproc: int) -> list[str]:
    """The command as a user would type it (``torchrun ... -m helpers`` when ``nproc`` > 1), with
    paths shown relative to the book's roots."""
    return [*_launcher(nproc), "-m", "helpers", *map(shown, _argv(command, profile, overrides, args))]


def launch(command: str, profile: Profile, overrides: dict | None = None, *args: str, tail: int = 12,
           nproc: int = 1, stream: bool = False) -> str:
    """Run the step now; its stdout. ``stream``: show every line as it comes (``make run``); in a
    notebook, its last lines live, then the last ``tail`` lines of its output (:mod:`.live`).
    Everything it said goes to its log; its record keeps the last ``tail`` lines."""
    typed = command_line(command, profile, overrides, args, nproc)
    torchrun = shutil.which("torchrun", path=str(Path(sys.executable).parent)) or "torchrun"
    cmd = [*_launcher(nproc, torchrun, sys.executable), "-m", "helpers", *_argv(command, profile, overrides, args)]
    print("$ " + " ".join(typed), flush=True)
    view = None if stream else live.notebook_view()
    log = live.log_path(profile.name, [command, *args])
    started = time.perf_counter()
    out = live.run_command(cmd, "stream" if stream else "live" if view else "quiet", log, " ".join(typed), view)
    lines = [shown(ln) for ln in out.stdout.splitlines() if ln.strip()]
    summary = "\n".join([*lines[-tail:], f"(its whole output: {shown(log)})"])
    if view is not None:
        view.show(summary)
    elif not stream:
        print(summary)
    if out.returncode != 0:
        raise steps.StepFailed(f"`{' '.join(typed)}` failed:\n{shown(failure_summary(out.stderr or ''))}")
    steps.add_output(profile, [command, *args], lines[-tail:], time.perf_counter() - started, nproc)
    return out.stdout


_ERROR_LINE = re.compile(r"^(\[rank\d+\]:\s*)?(error: |[A-Za-z_.]*(Error|Exception)\b.*: )")


def failure_summary(stderr: str, tail: int = 2000) -> str:
    """What a failed step said: the output's end, then its ``error:`` lines and exceptions (under
    torchrun, the rank that failed said why far above the tracebacks of the ranks it stopped), last:
    a log cut to its end (a terminal's scrollback, CI's report) still shows the cause."""
    said = list(dict.fromkeys(ln for ln in stderr.splitlines() if _ERROR_LINE.match(ln)))[-8:]
    end = stderr[-tail:]
    return "\n".join([end.rstrip("\n"), "... why, as it said earlier in its output:", *said]) if said else end


def run_step(command: str, profile: Profile, overrides: dict | None = None, *args: str,
             tail: int = 12, nproc: int = 1) -> str:
    """Run ``python -m helpers COMMAND --profile P [--set ...]``; show the end of its output.

    ``nproc`` > 1 launches it with ``torchrun --standalone --nproc_per_node=nproc`` (one process per
    GPU, or CPU processes with gloo). Each command skips work that is already done, so a rerun of
    the notebook is fast. A profile whose build does not run its steps (``build_runs_steps=0``:
    ``paper``, hours per step) shows the finished step's record instead, or says how to run it.
    """
    if profile.build_runs_steps:
        return launch(command, profile, overrides, *args, tail=tail, nproc=nproc)
    return show_finished(command, profile, overrides, *args, tail=tail, nproc=nproc)


def show_finished(command: str, profile: Profile, overrides: dict | None = None, *args: str,
                  tail: int = 12, nproc: int = 1) -> str:
    """What a build that renders from finished steps shows for one step (or :class:`StepNotDone`)."""
    typed = " ".join(command_line(command, profile, overrides, args, nproc))
    record = steps.finished(profile, [command, *args])
    if record is None:
        raise StepNotDone(
            f"This step has not finished for profile '{profile.name}' with these settings:\n"
            f"  $ {typed}\n"
            f"The '{profile.name}' profile runs its steps outside the book build (they take hours):\n"
            f"run `make run PROFILE={profile.name}` (every step in order, resumable) or the command "
            f"above, then build the book again.")
    lines = record.get("output", [])[-tail:]
    print(f"$ {typed}\n" + "\n".join(lines)
          + f"\n(finished {record['finished']} in {record['seconds']:.0f} s; not run again by the book build)")
    return "\n".join(lines)


def processes(profile: Profile, nproc: int | None = None) -> int:
    """The torchrun processes of the chapter's training (``nproc``, else one per GPU, else 2 CPU
    processes), printed with how the profile's global batch splits over them."""
    from ..classify.train import batch_plan  # torch
    from ..core.distributed import launch_processes  # torch

    nproc = nproc or launch_processes()
    plan = batch_plan(profile, nproc)
    print(f"training runs on {nproc} process(es): global batch {plan.global_batch} = "
          f"{plan.micro_batch} images x {nproc} process(es) x {plan.accum} micro-step(s)")
    if plan.note:
        print(f"note: {plan.note}")
    return nproc


def prerequisites(profile: Profile, overrides: dict | None, *steps: str) -> None:
    """Run the earlier chapters' steps this chapter reads (each skips what is done, so this is
    quick after a first run), so that a chapter can be run, or built, on its own."""
    for step in steps:
        command, *args = step.split()
        run_step(command, profile, overrides, *args, tail=1)


def glue_figure(name: str, fig) -> None:
    """Hand ``fig`` to the book (a ``{glue:figure}`` with a caption shows it) and not twice."""
    from myst_nb import glue  # the book's own extension: needed only when a notebook runs

    glue(name, fig, display=False)
    plt.close(fig)


def load_bench(profile: Profile, what: str) -> dict | None:
    path = results_root(profile.name) / f"bench_{what}.json"
    return json.loads(path.read_text()) if path.exists() else None
