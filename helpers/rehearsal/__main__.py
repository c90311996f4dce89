"""Dress rehearsal of every chapter: ``python -m helpers.rehearsal COMMAND`` builds and serves its stand-ins.

- ``build-coco ROOT --train N --val N [--profile P]``: write the COCO mirror's tree (prints which
  ids are bad; with a profile, they are among the photographs its plan samples);
- ``serve-coco ROOT --url-file F``: serve it on 127.0.0.1 until killed; the base URL goes to F
  (written once the server listens, so a Makefile can wait for F and export ``BOOK_COCO_URL``);
- ``build-hub HF_HOME --profile P [--set K=V] [--full-size]``: the profile's models under their
  hub ids in ``HF_HOME/hub`` (or ``--ids ID ...``).
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from pathlib import Path

from ..core.files import atomic_write_text
from ..core.profiles import ProfileError, add_profile_arguments, get_profile, parse_sets
from .coco_mirror import build_coco_mirror
from .coco_server import serve
from .hub import build_hub_cache, hub_ids_for
from .orchestrate import RehearsalError, rehearse


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m helpers.rehearsal", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("build-coco", help="write the stand-in COCO server tree")
    p.add_argument("root", type=Path)
    p.add_argument("--train", type=int, required=True, help="images in train2017")
    p.add_argument("--val", type=int, required=True, help="images in val2017")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--bad-per-kind", type=int, default=2, help="bad files of each kind, per subset")
    add_profile_arguments(p)
    p.epilog = "With --profile, the bad files are put among the photographs that profile's plan samples."
    p = sub.add_parser("serve-coco", help="serve a built tree on 127.0.0.1 until killed")
    p.add_argument("root", type=Path)
    p.add_argument("--url-file", type=Path, required=True, help="where to write the base URL")
    p = sub.add_parser("build-hub", help="write stand-in models into HF_HOME/hub under their hub ids")
    p.add_argument("hf_home", type=Path)
    add_profile_arguments(p)
    p.add_argument("--ids", nargs="+", default=None, help="these hub ids instead of the profile's")
    p.add_argument("--full-size", action="store_true", help="SD 2 at its published size (GPU box)")
    p = sub.add_parser("run", help="the whole rehearsal of a profile (make rehearse PROFILE=P)")
    p.add_argument("profile", choices=["course", "paper"])
    p.add_argument("--full-size", action="store_true", help="stand-ins at the real sizes (a GPU box)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except (ProfileError, ValueError, OSError) as exc:
        print(f"python -m helpers.rehearsal {args.command}: {exc}", file=sys.stderr)
        return 1


def _build_coco(args) -> int:
    profile = get_profile(args.profile, parse_sets(args.set)) if args.profile else None
    result = build_coco_mirror(args.root, args.train, args.val, seed=args.seed, bad_per_kind=args.bad_per_kind,
                               profile=profile)
    print(json.dumps(dict(md5=result["md5"], bad=result["bad"])))
    return 0


def _serve_coco(args) -> int:
    if not (args.root / "annotations" / "annotations_trainval2017.zip").is_file():
        raise ValueError(f"{args.root} holds no COCO mirror: run `python -m helpers.rehearsal build-coco "
                         f"{args.root} --train N --val N` first")
    url, stop = serve(args.root)
    done = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: done.set())
    atomic_write_text(args.url_file, url + "\n")
    print(f"COCO mirror at {url}", flush=True)
    done.wait()
    stop()
    return 0


def _build_hub(args) -> int:
    ids = args.ids or hub_ids_for(get_profile(args.profile, parse_sets(args.set)))
    for repo_id in build_hub_cache(args.hf_home, ids, full_size=args.full_size):
        print(f"hub stand-in: {repo_id}")
    return 0


def _run(args) -> int:
    try:
        rehearse(args.profile, args.full_size)
    except RehearsalError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


COMMANDS = {"build-coco": _build_coco, "serve-coco": _serve_coco, "build-hub": _build_hub, "run": _run}

if __name__ == "__main__":
    sys.exit(main())
