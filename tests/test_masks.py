import numpy as np
import pytest
from PIL import Image, ImageOps
from scipy import ndimage

from helpers.data.images import crop_box, preprocess
from helpers.inpaint import masks as mk


@pytest.mark.parametrize("ratio", [0.05, 0.15, 0.3])
def test_free_form_reaches_the_ratio_and_is_seeded(ratio):
    a = mk.free_form(384, 384, ratio, seed=3)
    assert a.dtype == bool and a.shape == (384, 384)
    assert ratio <= mk.hole_ratio(a) < ratio + 0.03
    assert np.array_equal(a, mk.free_form(384, 384, ratio, seed=3))
    assert not np.array_equal(a, mk.free_form(384, 384, ratio, seed=4))


OBJECT = [500, 200, 540, 200, 540, 260, 500, 260]  # x 500-540, y 200-260 of a 640x480 photograph
CUT_AWAY = [0, 100, 70, 100, 70, 400, 0, 400]  # larger, but in the 80 px the centre crop removes
RED, GREY = (230, 20, 20), (110, 120, 130)


def _photo(width: int, height: int, polygons) -> Image.Image:
    """A grey photograph with each polygon painted red, as COCO's pixel-edge coordinates mean it."""
    img = Image.new("RGB", (width, height), GREY)
    arr = np.asarray(img).copy()
    for poly in polygons:
        xs, ys = poly[0::2], poly[1::2]
        arr[min(ys):max(ys), min(xs):max(xs)] = RED
    return Image.fromarray(arr)


def _instances(width: int, height: int, polygons) -> dict:
    def area(p):
        return (max(p[0::2]) - min(p[0::2])) * (max(p[1::2]) - min(p[1::2]))

    anns = [{"image_id": 1, "iscrowd": 0, "area": area(p), "segmentation": [p]} for p in polygons]
    return {"images": [{"id": 1, "width": width, "height": height}], "annotations": anns}


def _transposed(poly):
    return [v for x, y in zip(poly[0::2], poly[1::2]) for v in (y, x)]


@pytest.mark.parametrize("portrait", [False, True], ids=["640x480", "480x640"])
def test_object_hole_covers_the_object_after_the_real_preprocess(portrait):
    """A known object put through ``data.images.preprocess`` (resize the shorter side, centre
    crop): the hole lies on the object's pixels. The old mapping (x * 384/640) drew it at x 300-324,
    beside the object at x 336-368."""
    w, h, polys = 640, 480, [OBJECT, CUT_AWAY]
    if portrait:
        w, h, polys = 480, 640, [_transposed(p) for p in polys]
    side = 384
    shown = np.asarray(preprocess(_photo(w, h, polys), side)).astype(float)
    # a pixel of the object: nearer to red than to the grey background after the resampling
    red = np.linalg.norm(shown - RED, axis=2) < np.linalg.norm(shown - GREY, axis=2)
    assert 0.9 * 32 * 48 <= red.sum() <= 1.1 * 32 * 48
    instances = _instances(w, h, polys)  # the object is 1% of the square: below the default 2%
    exact = mk.coco_object(instances, 1, side, min_ratio=0.005, dilate=0)
    assert (exact & red).sum() >= 0.99 * red.sum()  # the hole covers the object ...
    assert (exact & red).sum() >= 0.95 * exact.sum()  # ... and little else
    rows, cols = np.nonzero(exact)
    box = (cols.min(), cols.max(), rows.min(), rows.max())
    assert box == ((160, 207, 336, 367) if portrait else (336, 367, 160, 207))
    grown = mk.coco_object(instances, 1, side, min_ratio=0.005)  # the default dilation
    assert grown[red].all() and grown.sum() > exact.sum()


def test_an_object_the_crop_cuts_away_is_not_chosen():
    only_cut = _instances(640, 480, [CUT_AWAY])  # 20% of the photograph, none of the crop
    assert only_cut["annotations"][0]["area"] / (640 * 480) > 0.02
    assert mk.coco_object(only_cut, 1, 384) is None
    # half cut away: judged on the part that remains (x 80-120 of x 40-120)
    half = _instances(640, 480, [[40, 0, 120, 0, 120, 480, 40, 480]])
    m = mk.coco_object(half, 1, 384, dilate=0)
    assert m.sum() == 32 * 384
    assert mk.coco_object(half, 1, 384, max_ratio=0.05) is None  # 8.3% of the crop
    assert mk.coco_object(only_cut, 2, 384) is None  # an id with no image record


def test_coco_object_mask_picks_the_largest_plain_object():
    instances = {"images": [{"id": 7, "width": 200, "height": 100}], "annotations": [
        {"image_id": 7, "iscrowd": 0, "area": 400, "segmentation": [[60, 10, 80, 10, 80, 30, 60, 30]]},
        {"image_id": 7, "iscrowd": 0, "area": 1600, "segmentation": [[100, 20, 140, 20, 140, 60, 100, 60]]},
        {"image_id": 7, "iscrowd": 1, "area": 3000, "segmentation": {"counts": [], "size": [100, 200]}},
    ]}
    m = mk.coco_object(instances, 7, 200, dilate=0)  # crop x 50-150, drawn at twice the size
    assert m.shape == (200, 200) and m.sum() == 80 * 80
    ys, xs = np.nonzero(m)
    assert (xs.min(), xs.max(), ys.min(), ys.max()) == (100, 179, 40, 119)
    assert mk.coco_object(instances, 7, 200, 200, dilate=0).sum() == m.sum()  # the older call
    with pytest.raises(ValueError, match="preprocessed 200x200 square"):
        mk.coco_object(instances, 7, 200, 100)


@pytest.mark.parametrize("size", [(640, 480), (480, 640), (641, 479), (500, 333), (384, 384), (97, 1000)])
def test_preprocess_through_crop_box_is_pils_centred_fit(size):
    """Reference: PIL's ``ImageOps.fit`` (square, centred, LANCZOS), which ``preprocess`` used before
    it resized :func:`crop_box`'s box itself: the pixels must be the same exactly."""
    rng = np.random.default_rng(0)
    img = Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8))
    side = 64
    reference = ImageOps.fit(img, (side, side), method=Image.Resampling.LANCZOS, centering=(0.5, 0.5))
    assert np.array_equal(np.asarray(preprocess(img, side)), np.asarray(reference))
    assert crop_box(640, 480) == (80.0, 0.0, 560.0, 480.0)
    assert np.allclose(mk.to_preprocessed([[500, 200], [540, 260]], 640, 480, 384), [[336, 160], [368, 208]])


@pytest.mark.parametrize("pixels", [1, 4, 7])
def test_dilation_grows_the_hole_by_the_asked_pixels(pixels):
    """Reference: scipy's exact Euclidean distance transform; the grown hole is every pixel at
    distance <= ``pixels`` from the hole."""
    hole = np.zeros((64, 64), bool)
    hole[20:30, 25:40] = True
    hole[60, 5] = True
    grown = mk.dilate_hole(hole, pixels)
    assert np.array_equal(grown, ndimage.distance_transform_edt(~hole) <= pixels)
    rows, cols = np.nonzero(grown[:45])
    box = (rows.min(), rows.max(), cols.min(), cols.max())
    assert box == (20 - pixels, 29 + pixels, 25 - pixels, 39 + pixels)
    assert np.array_equal(mk.dilate_hole(hole, 0), hole)
    with pytest.raises(ValueError, match="0 or more pixels"):
        mk.dilate_hole(hole, -1)


def test_matched_holes_have_the_real_areas_and_shapes_inside_the_image():
    side = 96
    real = [mk.dilate_hole(mk.free_form(side, side, 0.1, seed=s), 2) for s in range(5)]
    real.append(np.ones((side, side), bool))  # a hole as large as the image can only stay put
    edge = np.zeros((side, side), bool)
    edge[0:10, 80:96] = True
    real.append(edge)
    ours = mk.matched_holes(real, seed=3)
    assert len(ours) == len(real)
    for r, g in zip(real, ours):
        assert g.shape == r.shape and g.dtype == bool and g.sum() == r.sum()
        rr, rc = np.nonzero(r)
        gr, gc = np.nonzero(g)  # the same pixels, shifted by one offset: the same shape
        assert np.array_equal(gr - gr.min(), rr - rr.min()) and np.array_equal(gc - gc.min(), rc - rc.min())
    assert np.array_equal(ours[5], real[5])
    moved = [not np.array_equal(r, g) for r, g in zip(real[:5], ours[:5])]
    assert sum(moved) >= 4  # the positions are new
    again = mk.matched_holes(real, seed=3)
    assert all(np.array_equal(a, b) for a, b in zip(ours, again))
    other = mk.matched_holes(real, seed=4)
    assert not all(np.array_equal(a, b) for a, b in zip(ours[:5], other[:5]))
    assert not mk.matched_holes([np.zeros((8, 8), bool)], seed=0)[0].any()


def test_folder_masks_are_matched_by_name_and_checked(tmp_path):
    hole = np.zeros((50, 80), np.uint8)
    hole[10:20, 10:30] = 255
    Image.fromarray(hole).save(tmp_path / "000000000042.png")
    m = mk.from_folder(tmp_path, "000000000042", 160, 100)
    assert m.shape == (100, 160) and m.sum() == 20 * 40
    with pytest.raises(mk.MaskError, match="no mask for '7'.*add 7.png"):
        mk.from_folder(tmp_path, "7", 10, 10)
    Image.new("L", (8, 8), 0).save(tmp_path / "empty.png")
    with pytest.raises(mk.MaskError, match="no hole"):
        mk.from_folder(tmp_path, "empty", 8, 8)
    (tmp_path / "broken.png").write_bytes(b"")
    with pytest.raises(mk.MaskError, match="broken.png: zero-byte"):
        mk.from_folder(tmp_path, "broken", 8, 8)


def test_object_removal_is_the_default_of_course_and_paper_and_free_form_of_smoke():
    """The paper removes objects (Fig. 6); smoke's stand-in photographs have no object annotations
    (only captions), so it draws free-form strokes. ``inpaint --masks`` defaults to the setting."""
    from helpers.__main__ import build_parser
    from helpers.core.profiles import ProfileError, get_profile

    assert {name: get_profile(name).inpaint_masks for name in ("smoke", "course", "paper")} == {
        "smoke": "free_form", "course": "objects", "paper": "objects"}
    assert get_profile("smoke", {"inpaint_masks": "objects"}).inpaint_masks == "objects"
    with pytest.raises(ProfileError, match="inpaint_masks"):
        get_profile("course", {"inpaint_masks": "strokes"})
    args = build_parser().parse_args(["inpaint", "--profile", "course", "--model", "telea"])
    assert args.masks is None  # the step then takes the profile's inpaint_masks
    assert build_parser().parse_args(["inpaint", "--model", "telea", "--masks", "/some/dir"]).masks == "/some/dir"
