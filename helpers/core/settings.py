"""Every chapter: the ``--set KEY=VALUE`` syntax of the book's overrides, on a command line and in ``$BOOK_SET``.

A notebook's ``overrides`` dict, a command's ``--set`` flags and a build's ``BOOK_SET`` say the same
thing in three places; these functions turn one into the other, so that a chapter can show the
exact command it runs. Checking a value against the profile's settings is
:func:`helpers.core.profiles.get_profile`'s job.
"""

from __future__ import annotations

import os
import shlex

SET_ENV = "BOOK_SET"


class ProfileError(ValueError):
    """An unknown profile, an unknown setting or a bad value."""


def parse_sets(pairs: list[str] | None) -> dict:
    """``["real_train=100", "sd_steps=10"]`` from ``--set`` flags into a dict of overrides."""
    out = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ProfileError(f"--set needs KEY=VALUE, got {pair!r}")
        out[key.strip()] = value.strip()
    return out


def to_sets(overrides: dict | None) -> list[str]:
    """The inverse of :func:`parse_sets`: command-line flags for a dict of overrides."""
    flags = []
    for key, value in (overrides or {}).items():
        flags += ["--set", f"{key}={value}"]
    return flags


def build_sets() -> dict:
    """The build-wide overrides of ``$BOOK_SET`` (``"KEY=VALUE KEY=VALUE"``), as a dict."""
    text = os.environ.get(SET_ENV, "")
    try:
        return parse_sets(shlex.split(text))
    except (ProfileError, ValueError) as exc:
        raise ProfileError(f"${SET_ENV}={text!r} is not a list of KEY=VALUE pairs separated by "
                           f"spaces ({exc})") from None
