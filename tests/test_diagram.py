"""The opening page's pipeline picture: every command it names exists, every arrow joins two boxes."""

import matplotlib

matplotlib.use("Agg")

from helpers.__main__ import build_parser  # noqa: E402
from helpers.book import diagram  # noqa: E402


def _commands():
    parser = build_parser()
    sub = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    return set(sub.choices)


def test_every_command_in_the_picture_is_a_command_of_the_book():
    known = _commands()
    named = {c.split()[0] for s in diagram.STAGES for c in s.commands}
    assert named and named <= known, named - known


def test_the_picture_has_a_box_per_stage_and_its_arrows():
    keys = {s.key for s in diagram.STAGES}
    assert all(a in keys and b in keys for a, b in diagram.ARROWS)
    fig = diagram.pipeline_figure()
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert all(s.title in texts for s in diagram.STAGES)
    assert len(fig.axes[0].patches) == len(diagram.STAGES)
    assert sum(1 for c in fig.axes[0].get_children() if c.__class__.__name__ == "Annotation") >= len(diagram.ARROWS)
