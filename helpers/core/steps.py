"""Every chapter: which of the book's long steps have finished, for which settings, and how long they took.

A command of ``python -m helpers`` that ends well writes a record under
``results/<profile>/steps/``: the command line, a digest of every setting it ran with (so a change of
``BOOK_SET`` or ``--set`` makes it a different step), when it finished and how long it ran. The
launcher of the chapters (:func:`helpers.book.chapter.run_step`) adds the last lines the step printed.

Two uses: a ``paper`` build renders from finished steps instead of running hours inside a notebook
cell (a chapter whose step has not finished says so and shows the command), and the rehearsal
reads the durations of its steps from the same records.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path

from .paths import results_root, shown
from .files import atomic_write_text

HIDDEN = ("--profile", "--set")  # the settings digest covers them
NOT_SETTINGS = ("build_runs_steps",)  # where a step runs, not what it computes


class StepFailed(RuntimeError):
    """A step launched for a chapter or for ``make run`` ended with an error (shown above it)."""


def settings_digest(profile) -> str:
    """A digest of every setting of the profile as it ran (overrides and $BOOK_SET included)."""
    settings = {k: v for k, v in profile.as_dict().items() if k not in NOT_SETTINGS}
    text = json.dumps(settings, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def step_args(argv: list[str]) -> list[str]:
    """The command and its own arguments, without ``--profile``/``--set`` and their values."""
    out, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg in HIDDEN:
            skip = True
        elif not arg.startswith(HIDDEN):
            out.append(arg)
    return out


def record_path(profile, argv: list[str]) -> Path:
    args = step_args(argv)
    key = hashlib.sha256("\0".join(args).encode()).hexdigest()[:12]
    return results_root(profile.name) / "steps" / f"{args[0]}-{key}.json"


def record_done(profile, argv: list[str], seconds: float) -> Path | None:
    """Called by ``python -m helpers`` after a command ended well (rank 0 only under torchrun)."""
    if int(os.environ.get("RANK", "0")) != 0:
        return None
    path = record_path(profile, argv)
    earlier = finished(profile, argv) or {}
    record = dict(command=" ".join(map(shown, step_args(argv))), settings=settings_digest(profile),
                  seconds=round(seconds, 3), finished=time.strftime("%Y-%m-%d %H:%M:%S"),
                  world_size=int(os.environ.get("WORLD_SIZE", "1")))
    if earlier.get("seconds", 0) > seconds:  # a rerun that found the work done: keep the work's time
        record.update({k: earlier[k] for k in ("seconds", "launcher_seconds", "nproc", "world_size", "output")
                       if k in earlier}, finished=earlier.get("finished", record["finished"]))
        record["rerun"] = time.strftime("%Y-%m-%d %H:%M:%S")
    atomic_write_text(path, json.dumps(record, indent=2))
    return path


def finished(profile, argv: list[str]) -> dict | None:
    """The record of this step with these settings, or None when it has not finished."""
    path = record_path(profile, argv)
    if not path.exists():
        return None
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except ValueError:
        return None
    return record if record.get("settings") == settings_digest(profile) else None


def add_output(profile, argv: list[str], lines: list[str], launcher_seconds: float, nproc: int) -> None:
    """Keep the last lines the step printed, and the time as the launcher saw it, with its record."""
    record = finished(profile, argv)
    if record is not None and "rerun" not in record:  # the output and time of the run that did the work
        record.update(output=lines, launcher_seconds=round(launcher_seconds, 3), nproc=nproc)
        atomic_write_text(record_path(profile, argv), json.dumps(record, indent=2))


def all_records(profile) -> list[dict]:
    """Every finished step of the profile, oldest first."""
    folder = results_root(profile.name) / "steps"
    records = [json.loads(p.read_text(encoding="utf-8")) for p in folder.glob("*.json")]
    return sorted(records, key=lambda r: r.get("finished", ""))


STANDINS = "stand-ins.json"  # in a results root: every external asset was a rehearsal's stand-in


def made_from_standins(profile_name: str) -> dict | None:
    """What a rehearsal wrote into this results root (its stand-ins), or None for a real run.

    Results made against stand-ins (``make rehearse``: random weights, a COCO look-alike) are
    pipeline checks like smoke's, whatever the profile; every page that shows them says so."""
    path = results_root(profile_name) / STANDINS
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None
