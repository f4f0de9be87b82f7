"""The creature scenes: deterministic, boxes tight around creatures that are really drawn, and the
variety (coats, colours, poses, views, sizes, cuts by the frame, occlusion) that makes them hard."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageFilter

from pipeline.sources import synthetic_creatures as sc

SIZES = [(240, 160), (160, 240), (200, 200), (288, 162), (320, 240)]
COUNT = 200


@pytest.fixture(scope="module")
def scenes() -> list[sc.Scene]:
    rng = np.random.default_rng(0)
    return [sc.render_scene(rng, *SIZES[i % len(SIZES)], 4) for i in range(COUNT)]


def placed_mask(creature: sc.Creature, size: tuple[int, int]) -> np.ndarray:
    """The creature's silhouette in image coordinates (the part inside the image)."""
    mask = Image.new("L", size)
    mask.paste(creature.cutout.getchannel("A"), creature.origin)
    return np.asarray(mask)


def whole_box(creature: sc.Creature) -> np.ndarray:
    """The silhouette's box in image coordinates before clipping."""
    return np.add(creature.cutout.getbbox(), creature.origin * 2)


def creatures(scenes):
    return [(s, c) for s in scenes for c in s.creatures]


def test_same_seed_same_pixels_and_boxes_another_seed_others():
    first = sc.render_image(np.random.default_rng(5), 320, 240, 4)
    again = sc.render_image(np.random.default_rng(5), 320, 240, 4)
    other = sc.render_image(np.random.default_rng(6), 320, 240, 4)
    assert first[0].tobytes() == again[0].tobytes() and first[1] == again[1]
    assert first[0].tobytes() != other[0].tobytes() and first[1] != other[1]
    assert first[0].mode == "RGB" and first[0].size == (320, 240)
    scene = sc.render_scene(np.random.default_rng(5), 320, 240, 4)  # what render_image shows
    assert scene.image.tobytes() == first[0].tobytes()
    assert [c.shape for c in scene.creatures] == first[1]


def test_boxes_lie_inside_the_image_rounded_and_not_degenerate(scenes):
    counts = [len(s.creatures) for s in scenes]
    assert min(counts) == 1 and max(counts) == 4
    for scene, c in creatures(scenes):
        w, h = scene.image.size
        box = c.shape
        assert box.category == "creature"
        assert 0 <= box.x0 < box.x1 <= w and 0 <= box.y0 < box.y1 <= h, box
        assert box.x1 - box.x0 >= 3 and box.y1 - box.y0 >= 3, box
        assert all(round(v, 2) == v for v in (box.x0, box.y0, box.x1, box.y1))


def test_each_box_is_the_tight_box_of_its_creature_clipped(scenes):
    """The box of the whole silhouette (legs, neck, head, tail), clipped to the image."""
    for scene, c in creatures(scenes):
        w, h = scene.image.size
        ys, xs = np.nonzero(np.asarray(c.cutout.getchannel("A")))
        whole = np.add((xs.min(), ys.min(), xs.max() + 1, ys.max() + 1), c.origin * 2)
        box = (c.shape.x0, c.shape.y0, c.shape.x1, c.shape.y1)
        assert tuple(np.clip(whole, 0, [w, h, w, h])) == box
        ys, xs = np.nonzero(placed_mask(c, (w, h)))  # what of it lies in the image
        assert box[0] <= xs.min() and xs.max() < box[2] and box[1] <= ys.min() and ys.max() < box[3]
        inside = whole[0] >= 0 and whole[1] >= 0 and whole[2] <= w and whole[3] <= h
        if inside:  # then the silhouette touches all four sides
            assert (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1) == box


def test_creature_pixels_differ_from_the_scenery_behind_them(scenes):
    """Where a creature's silhouette is, the image is not the background (a creature, or a
    branch in front of it, is drawn there); where the image shows it unoccluded, it is its coat."""
    fractions, matches = [], []
    for scene, c in creatures(scenes):
        size = scene.image.size
        image = np.asarray(scene.image, float)
        changed = np.abs(image - np.asarray(scene.background, float)).max(axis=2) > 24
        inside = placed_mask(c, size) >= 128
        fractions.append(changed[inside].mean())
        if c is scene.creatures[-1]:  # the nearest: only foreground clutter can hide it
            coat = Image.new("RGBA", size)
            coat.paste(c.cutout, c.origin)
            coat = np.asarray(coat, float)
            solid = coat[..., 3] == 255
            matches.append((np.abs(coat[..., :3] - image).max(axis=2)[solid] < 45).mean())
    assert min(fractions) > 0.2 and np.median(fractions) > 0.8
    assert np.median(matches) > 0.95  # the coat is where the mask says (grain aside)
    assert np.mean(np.array(matches) < 0.97) > 0.05  # some are partly behind a branch or bush


def coat_detail(c: sc.Creature) -> np.ndarray:
    """How far the coat departs from its local mean, well inside the silhouette."""
    rgb = c.cutout.convert("RGB")
    inner = np.asarray(c.cutout.getchannel("A").filter(ImageFilter.MinFilter(7))) == 255
    detail = np.asarray(rgb, float) - np.asarray(rgb.filter(ImageFilter.BoxBlur(3)), float)
    return np.abs(detail.mean(axis=2))[inner]


def test_coats_are_textured(scenes):
    detail = []
    for _, c in creatures(scenes):
        d = coat_detail(c)
        if max(whole_box(c)[2:] - whole_box(c)[:2]) >= 40 and d.size > 50:
            detail.append(d.mean())
    detail = np.array(detail)
    assert len(detail) > 100
    # patches, spots and stripes have edges (measured: median ~25); plain coats only shading (~5)
    assert np.mean(detail > 10) > 0.45 and np.mean(detail < 8) > 0.1


def test_coats_vary_in_colour(scenes):
    means = np.array(
        [
            np.asarray(c.cutout, float)[..., :3][np.asarray(c.cutout)[..., 3] == 255].mean(axis=0)
            for _, c in creatures(scenes)
        ]
    )
    assert means.std(axis=0).min() > 30  # the spread of mean colours, in every channel
    hues = np.asarray(Image.fromarray(means.astype(np.uint8)[None]).convert("HSV"), float)[0]
    coloured = hues[hues[:, 1] > 60]  # not greys
    assert len(set((coloured[:, 0] // 32).astype(int))) >= 6  # of 8 hue sectors
    assert np.mean(means[:, 2] > means[:, 0] + 20) > 0.05  # some bluish, not only tan and brown
    assert {c.coat for _, c in creatures(scenes)} == set(sc.COATS)


def test_some_creatures_are_cut_by_the_frame(scenes):
    cut, touching = [], []
    for scene, c in creatures(scenes):
        w, h = scene.image.size
        box = whole_box(c)
        cut.append(box[0] < 0 or box[1] < 0 or box[2] > w or box[3] > h)
        s = c.shape
        touching.append(s.x0 == 0 or s.y0 == 0 or s.x1 == w or s.y1 == h)
    assert 0.1 < np.mean(cut) < 0.6
    assert all(t for t, c in zip(touching, cut, strict=True) if c)  # a cut box reaches the border
    assert np.mean(touching) - np.mean(cut) < 0.02  # and others rarely do


def test_poses_views_sizes_and_shapes_vary(scenes):
    found = creatures(scenes)
    assert {c.pose for _, c in found} == set(sc.POSES)
    assert {c.facing for _, c in found} == {-1, 1}
    yaws = np.array([c.yaw for _, c in found])
    assert np.mean(yaws == 0) > 0.3 and np.mean(yaws > 0.8) > 0.1  # side views and front views
    sides = np.array([whole_box(c)[2:] - whole_box(c)[:2] for _, c in found], float)
    shorts = np.array([min(s.image.size) for s, _ in found])
    scale = sides.max(axis=1) / shorts
    assert scale.min() > 0.12 and scale.max() < 0.95
    assert np.mean(scale < 0.3) > 0.2 and np.mean(scale > 0.6) > 0.1
    aspect = sides[:, 0] / sides[:, 1]
    assert np.mean(aspect < 0.8) > 0.1 and np.mean(aspect > 1.4) > 0.1  # tall and wide boxes


def test_creatures_overlap_now_and_then(scenes):
    overlapping = 0
    for scene in scenes:
        boxes = [whole_box(c) for c in scene.creatures]
        overlapping += any(
            min(a[2], b[2]) > max(a[0], b[0]) and min(a[3], b[3]) > max(a[1], b[1])
            for i, a in enumerate(boxes)
            for b in boxes[:i]
        )
    assert 5 <= overlapping <= COUNT * 0.6
