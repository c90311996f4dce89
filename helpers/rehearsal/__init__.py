"""Every chapter, rehearsed: stand-ins placed at the real addresses (the dress rehearsal).

A rehearsal builds the whole book in ``course`` or ``paper`` offline: COCO comes from a loopback
server laid out like COCO's own (:mod:`.coco_mirror` builds the tree from :mod:`.coco_annotations`
and :mod:`.coco_pictures`, :mod:`.coco_server` serves it, reached through ``BOOK_COCO_URL``), the
models from a hand-made Hugging Face cache under their real hub ids (:mod:`.hub`, with
``HF_HOME`` and ``HF_HUB_OFFLINE=1``) and the inpainting checkpoints from :mod:`.checkpoints`.
:mod:`.orchestrate` runs it all (``make rehearse``); :mod:`.timings` shows what it measured. The
book's code runs unchanged; only the assets are stand-ins, so nothing a rehearsal measures is a
finding. ``python -m helpers.rehearsal --help`` lists the commands the Makefile uses.

Re-exported here: what loads without torch. ``checkpoints`` builds the inpainting networks with
torch at its top: import it as ``helpers.rehearsal.checkpoints``.
"""

from . import timings
from .coco_annotations import CATEGORIES, SIZES, SUBSETS, rle_counts
from .coco_mirror import BAD_KINDS, MANIFEST, build_coco_mirror, read_manifest
from .coco_pictures import paint
from .coco_server import serve
from .hub import SD2_INPAINT, build_hub_cache, component_configs, hub_ids_for, model_index
from .orchestrate import RehearsalError, rehearse

__all__ = ["BAD_KINDS", "CATEGORIES", "MANIFEST", "SD2_INPAINT", "SIZES", "SUBSETS", "RehearsalError",
           "build_coco_mirror", "build_hub_cache", "component_configs", "hub_ids_for", "model_index", "paint",
           "read_manifest", "rehearse", "rle_counts", "serve", "timings"]
