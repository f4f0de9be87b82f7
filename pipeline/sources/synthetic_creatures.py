"""A harder offline proxy for "giraffes in photos": articulated, coated quadrupeds (category
"creature") of varied poses, views, sizes and coats in clutter, some cut by the border, overlapping
or behind a branch or bush. A box is the tight box of a creature's whole silhouette, clipped."""

from __future__ import annotations

import dataclasses
import math
from functools import lru_cache

import numpy as np
from PIL import Image, ImageChops, ImageDraw, ImageFilter

from pipeline.sources.synthetic_drawing import SUPERSAMPLE, Shape, background

CATEGORY = "creature"
POSES = ("standing", "walking", "grazing", "running", "lying")
COATS = ("patches", "spots", "stripes", "plain")
THRESHOLD = 40  # mask values below this are dropped, so the box holds every pixel a creature tints
TILE = 1024
SKY = ((70, 130, 200), (200, 215, 230), (150, 150, 160), (230, 170, 120))
GROUND = ((170, 150, 90), (110, 130, 60), (140, 110, 80), (200, 180, 120))
LEAVES = ((60, 100, 40), (90, 120, 50), (40, 70, 35), (150, 140, 60))
BARK = ((90, 70, 50), (60, 50, 45), (120, 110, 100))
NINE = np.mgrid[-1:2, -1:2].reshape(2, 9, 1, 1)  # offsets to a grid cell and its neighbours
CIRCLE = np.stack([np.cos(np.arange(14) * np.pi / 7), np.sin(np.arange(14) * np.pi / 7)], 1)
Poly = tuple[np.ndarray, float, int]  # side-view points (n, 2), lateral offset, shade 0-255


@dataclasses.dataclass(frozen=True)
class Creature:
    shape: Shape | None  # its box in the image (None until placed)
    cutout: Image.Image  # "RGBA": its shaded coat, alpha its whole silhouette (occluders aside)
    origin: tuple[int, int]  # where the cutout's top-left lies in the image
    pose: str
    coat: str
    facing: int  # 1 right, -1 left
    yaw: float  # radians turned towards the viewer (0: seen from the side)


@dataclasses.dataclass
class Scene:
    image: Image.Image
    creatures: list[Creature]  # far to near
    background: Image.Image  # the scenery alone, with the same grain


@lru_cache(maxsize=1)
def _tiles() -> tuple[Image.Image, Image.Image]:
    """Fixed grain and mottle tiles, cropped at random offsets: cheap and deterministic."""
    rng = np.random.default_rng(0)
    grain = np.clip(128 + rng.normal(0, 12, (TILE, TILE, 3)), 0, 255).astype(np.uint8)
    fine, coarse = rng.uniform(0.4, 1, (TILE // 2,) * 2), rng.uniform(0.7, 1, (TILE // 16,) * 2)
    up = [Image.fromarray((a * 255).astype(np.uint8)).resize((TILE, TILE)) for a in (fine, coarse)]
    return Image.fromarray(grain), ImageChops.multiply(*up).convert("RGB")


def _crop(rng: np.random.Generator, tile: Image.Image, w: int, h: int) -> Image.Image:
    tile = tile if max(w, h) <= TILE else tile.resize((max(w, TILE), max(h, TILE)))
    x, y = (int(rng.integers(0, tile.size[i] - s + 1)) for i, s in enumerate((w, h)))
    return tile.crop((x, y, x + w, y + h))


def _pick(rng: np.random.Generator, table: tuple, jitter: float = 20.0) -> tuple[int, ...]:
    colour = rng.uniform(0, 255, 3) if rng.random() < 0.2 else table[rng.integers(len(table))]
    return tuple(int(c) for c in np.clip(np.asarray(colour) + rng.normal(0, jitter, 3), 0, 255))


def _textured(rng: np.random.Generator, image, mask, colour, ragged=0, blobs=(), blur=0.0):
    """Paste `colour`, mottled, through `mask` and `blobs` (disc clusters), with holes if ragged."""
    for c, spread, r, n in blobs:
        discs = np.column_stack([c + rng.normal(0, 1, (n, 2)) * spread, rng.uniform(0.4, 1, n) * r])
        for x, y, rr in discs:
            ImageDraw.Draw(mask).ellipse([x - rr, y - rr, x + rr, y + rr], fill=255)
    mask = mask.filter(ImageFilter.GaussianBlur(blur)) if blur else mask
    if box := mask.getbbox():
        size = (box[2] - box[0], box[3] - box[1])
        mottle, mask = _crop(rng, _tiles()[1], *size), mask.crop(box)
        holes = mottle.getchannel(0).point(lambda v: 255 * (v > ragged))
        paint = ImageChops.multiply(Image.new("RGB", size, colour), mottle)
        image.paste(paint, box[:2], ImageChops.multiply(mask, holes))


def _scenery(rng: np.random.Generator, w: int, h: int) -> Image.Image:
    """A far layer at half size (soft once scaled up), then grass strokes at full size."""
    sw, sh, sky = max(w // 2, 8), max(h // 2, 8), np.uint8([[_pick(rng, SKY)], [_pick(rng, SKY)]])
    horizon, xs = rng.uniform(0.1, 0.7) * sh, np.linspace(0, sw, 12)
    far = background(rng, sw, sh) if rng.random() < 0.25 else Image.fromarray(sky).resize((sw, sh))
    draw, ground, bark, crowns = ImageDraw.Draw(far), _pick(rng, GROUND), _pick(rng, BARK), []
    for k in range(int(rng.integers(0, 3)), -1, -1):  # hills, then the ground (k = 0)
        ys = horizon - sh * (0.05 * k + rng.uniform(0, 0.12 if k else 0.02, 12))
        land = Image.new("L", (sw, sh))
        ImageDraw.Draw(land).polygon([*zip(xs, ys, strict=True), (sw, sh), (0, sh)], fill=255)
        _textured(rng, far, land, _pick(rng, GROUND, 40) if k else ground)
    for _ in range(int(rng.integers(0, 7))):  # trees and bushes, bigger nearer
        x, y = rng.uniform(0, sw), rng.uniform(horizon, sh)
        size = sh * rng.uniform(0.1, 0.5) * (0.3 + (y - horizon) / max(sh - horizon, 1))
        trunk, flat = size * rng.uniform(0, 1.2), rng.uniform(0.3, 1.0)
        draw.line([(x, y), (x, y - trunk)], fill=bark, width=max(1, int(size * 0.06)))
        crowns.append(((x, y - trunk), (0.45 * size, 0.45 * size * flat), size * 0.22, 24))
    _textured(rng, far, Image.new("L", (sw, sh)), _pick(rng, LEAVES), 100, crowns)
    for _ in range(int(rng.integers(0, 6))):  # rocks and odd polygons
        r = rng.uniform(0.02, 0.15) * sh * rng.uniform(0.5, 1, (14, 1)) * (1, 0.7)
        points = CIRCLE * r + (rng.uniform(0, sw), rng.uniform(horizon, sh))
        draw.polygon(points[:: rng.integers(1, 6)].ravel().tolist(), fill=_pick(rng, BARK, 40))
    blur = rng.uniform(0.4, 1.3) * (rng.random() < 0.35)  # depth of field, now and then
    image = far.filter(ImageFilter.GaussianBlur(blur)).resize((w, h), Image.BILINEAR)
    n, top, draw = int(rng.integers(0, 250)), horizon * h / sh, ImageDraw.Draw(image)
    ys, xs, lean = rng.uniform(top, h, n), rng.uniform(0, w, n), rng.normal(0, 0.3, n)
    lengths = (3 + 25 * (ys - top) / max(h - top, 1)) * rng.uniform(0.5, 1.5, n)
    shades = (rng.uniform(0.5, 1.3, (n, 3)) * ground).clip(0, 255).astype(int).tolist()
    for x, y, s, a, c in zip(xs, ys, lengths, lean, shades, strict=True):  # grass, longer nearer
        draw.line([(x, y), (x + s * math.sin(a), y - s * math.cos(a))], fill=tuple(c))
    return image


def _ellipse(c, a: float, b: float, tilt: float = 0.0, z: float = 0.0, shade: int = 0) -> Poly:
    turn = np.array([[math.cos(tilt), math.sin(tilt)], [-math.sin(tilt), math.cos(tilt)]])
    return np.asarray(c) + CIRCLE * (a, b) @ turn, z, shade


def _limb(p, q, w0: float, w1: float, z: float = 0.0, shade: int = 0) -> list[Poly]:  # tapered
    p, q = np.asarray(p, float), np.asarray(q, float)
    n = np.array([p[1] - q[1], q[0] - p[0]]) / (math.hypot(*(q - p)) + 1e-9)
    quad = np.array([p + n * w0 / 2, q + n * w1 / 2, q - n * w1 / 2, p - n * w0 / 2])
    return [(quad, z, shade), (p + CIRCLE * w0 / 2, z, shade), (q + CIRCLE * w1 / 2, z, shade)]


def _dir(degrees: float) -> np.ndarray:  # 0: forward, 90: up (image y points down)
    return np.array([math.cos(math.radians(degrees)), -math.sin(math.radians(degrees))])


def _skeleton(rng: np.random.Generator, pose: str, yaw: float) -> list[Poly]:
    """A creature as shaded polygons in drawing order, in body lengths, head to the right."""
    tall = rng.random() < 0.6  # giraffe-like: long neck and legs
    neck, leg = rng.uniform((0.75, 0.38), (1.3, 0.55)) * ((1, 1) if tall else (0.42, 0.7))
    thick, belly, s = rng.uniform(0.75, 1.25), rng.uniform(0.15, 0.24), rng.uniform(12, 40)
    tilt = -math.radians(rng.uniform(0, 16 if tall else 6))  # shoulders higher than hips
    turn = np.array([[math.cos(tilt), math.sin(tilt)], [-math.sin(tilt), math.cos(tilt)]])
    stretch = math.sqrt(1 + (0.3 * math.tan(yaw)) ** 2)  # seen from the front: short, as wide
    parts = (((0, 0), 0.5, 1), ((0.25, -0.04), 0.24, 1.1), ((-0.3, 0), 0.2, 1))
    body = [_ellipse(np.array(c) @ turn, a * stretch, belly * k, tilt) for c, a, k in parts]
    angles = {  # hip and knee, degrees from straight down (+ forward): front near, front far, ...
        "walking": [[s, s - 25], [-0.6 * s, -0.6 * s - 5], [-s, -s + 20], [0.6 * s, 0.6 * s + 15]],
        "running": [[s + 10, s + 40], [0.5 * s, s - 60], [-s - 10, -s - 20], [-0.4 * s, 50 - s]],
        "grazing": [[s, s], [-0.5 * s, -0.5 * s], [-8, -8], [6, 6]],
        "lying": [[80, -95], [70, -100], [85, -90], [90, -95]],
    }.get(pose, np.zeros((4, 2))) + rng.normal(0, 6, (4, 2))
    near, far = [], []
    for i, (hip_angle, knee_angle) in enumerate(angles):
        hip = np.array((0.3, 0.1) if i < 2 else (-0.33, 0.08)) @ turn
        z, shade = (0.12, 0) if i % 2 == 0 else (-0.12, 80)
        knee = hip + leg * _dir(hip_angle - 90)
        hoof = knee + leg * _dir(knee_angle - 90)
        limb = _limb(hip, knee, 0.15 * thick, 0.065 * thick, z, shade)
        limb += _limb(knee, hoof, 0.065 * thick, 0.045 * thick, z, shade)
        (near if i % 2 == 0 else far).extend(limb + [_ellipse(hoof, 0.03, 0.03, 0, z, 190)])
    root = np.array((-0.5, -0.05)) @ turn
    hang = rng.uniform(50, 100) if pose == "running" else rng.uniform(10, 45)
    end = root + rng.uniform(0.25, 0.45) * _dir(-90 - hang)
    tail = _limb(root, end, 0.04, 0.02) + [_ellipse(end, 0.035, 0.05, shade=150)]
    base, w = np.array((0.36, -belly * 0.6)) @ turn, 0.2 * thick  # the neck's root and width
    lo, hi = {"grazing": (-75, -25), "running": (10, 45), "walking": (30, 70)}.get(pose, (40, 85))
    up, bend = rng.uniform(lo, hi), rng.uniform(-12, 12)
    mid = base + neck / 2 * _dir(up + bend)
    top = mid + neck / 2 * _dir(up - bend)
    head = _limb(base, mid, w * 1.4, w * 0.8) + _limb(mid, top, w * 0.8, w * 0.55)
    if rng.random() < 0.35:  # a dark mane along the back of the neck
        back = _dir(up + 90) * w * 0.3
        head += _limb(base + back, top + back, w * 0.35, w * 0.2, shade=120)
    face = up - rng.uniform(70, 110) if up > 0 else rng.uniform(-115, -70)
    size = rng.uniform(0.2, 0.32)
    head += _limb(top, top + size * _dir(face), size * 0.5, size * 0.28)
    lift = size * 0.15 * _dir(face + 90)
    ear = [top + lift + 0.04 * _dir(face), top + size * 0.45 * _dir(face + 150), top + lift]
    head.append((np.array(ear), 0.0, 30))
    for along in (0.0, 0.08) if rng.random() < 0.6 else ():  # horns with knobs
        root = top + along * size * _dir(face)
        head += _limb(root, root + size * 0.4 * _dir(face + 100), 0.03, 0.05, 0.02, 40)
    eye = top + size * 0.3 * _dir(face) + size * 0.12 * _dir(face + 90)
    return far + tail + body + head + [_ellipse(eye, 0.022, 0.022, 0, 0.05, 235)] + near


def _coat(rng: np.random.Generator, mask: Image.Image, unit: float) -> tuple[Image.Image, str]:
    """Paint for a creature: its coat at a modest resolution, shaded, scaled up to the mask."""
    (w, h), kind = mask.size, COATS[rng.choice(4, p=[0.4, 0.2, 0.2, 0.2])]
    f = max(1, math.ceil(max(w, h) / 110))
    tw, th = max(w // f, 4), max(h // f, 4)
    hue, pale = rng.uniform(40, 255, 3), np.full(3, rng.uniform(150, 250))
    giraffe = ([225, 195, 140] + rng.normal(0, 18, 3), [140, 80, 35] + rng.normal(0, 25, 3))
    pairs = [giraffe, (hue, hue * rng.uniform(0.2, 0.6)), (hue, rng.uniform(0, 255, 3))]
    base, dark = np.array((pairs + [(pale, pale * rng.uniform(0.05, 0.3))])[rng.integers(4)])
    yy, xx = np.mgrid[0:th, 0:tw].astype(np.float32)
    cell = max(rng.uniform(0.06, 0.15) * unit / f, 1.5)
    wobble = np.asarray(_crop(rng, _tiles()[1], tw, th), np.float32)[..., 0] / 255 * cell * 0.5
    marks = (wobble / cell * 0.6)[..., None]  # plain: a faint mottle
    if kind in ("patches", "spots"):
        gy, gx = int(th / cell) + 4, int(tw / cell) + 4  # jittered seeds on a grid, one per cell
        seeds = (np.mgrid[0:gy, 0:gx] - 1 + rng.uniform(0.1, 0.9, (2, gy, gx))) * cell
        py, px = yy + wobble, xx + wobble
        iy, ix = (np.stack([py, px]) // cell).astype(int)[:, None] + 1 + NINE
        dist = np.hypot(py - seeds[0][iy, ix], px - seeds[1][iy, ix])
        d1, d2 = np.partition(dist, 1, axis=0)[:2]  # to the nearest and second nearest seed
        ids = np.take_along_axis(iy * gx + ix, dist.argmin(0)[None], 0)[0] % 997
        net, spots = d2 - d1 < rng.uniform(0.1, 0.3) * cell, d1 < rng.uniform(0.2, 0.4) * cell
        marks = (spots if kind == "spots" else net if rng.random() < 0.4 else ~net)[..., None]
        marks = marks * rng.uniform(0.75, 1.0, 997)[ids][..., None]
    elif kind == "stripes":
        angle = rng.uniform(0, np.pi)
        u = (xx * math.cos(angle) + yy * math.sin(angle) + 3 * wobble) / cell
        marks = (np.sin(u * np.pi) > rng.uniform(-0.3, 0.5))[..., None]
    soft = mask.resize((tw, th), Image.BILINEAR).filter(ImageFilter.GaussianBlur(1))
    light = (1.15 - 0.35 * yy / th) * (0.7 + 0.3 * np.asarray(soft, np.float32) / 255)
    rgb = (base * (1 - marks) + dark * marks) * light[..., None] + rng.normal(0, 6, (th, tw, 3))
    paint = Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8)).resize((w, h), Image.BILINEAR)
    return paint, kind


def _creature(rng: np.random.Generator, short: int) -> Creature:
    """A creature, unplaced, the long side of its box 15-90% of `short`."""
    pose, facing = POSES[int(rng.integers(len(POSES)))], int(rng.choice([-1, 1]))
    yaw = 0.0 if rng.random() < 0.5 else float(rng.uniform(0.25, 1.2))
    polys = _skeleton(rng, pose, yaw)
    roll, squash = rng.uniform(-0.1, 0.1), rng.uniform(0.8, 1.25) * facing
    turn = np.array([[math.cos(roll), math.sin(roll)], [-math.sin(roll), math.cos(roll)]])
    c, s = math.cos(yaw), math.sin(yaw)
    points = [np.stack([(p[:, 0] * c + z * s) * squash, p[:, 1]], 1) @ turn for p, z, _ in polys]
    lo, extent = np.concatenate(points).min(0), np.ptp(np.concatenate(points), 0)
    unit = short * math.exp(rng.uniform(math.log(0.15), math.log(0.9))) / extent.max()
    drawing = Image.new("LA", tuple(int(v) for v in (np.ceil(extent * unit) + 4) * SUPERSAMPLE))
    for p, (_, _, tone) in zip(points, polys, strict=True):
        flat = (((p - lo) * unit + 2) * SUPERSAMPLE).ravel().tolist()
        ImageDraw.Draw(drawing).polygon(flat, fill=(tone, 255))  # shade, silhouette
    shade, mask = drawing.reduce(SUPERSAMPLE).split()
    mask = mask.point([0] * THRESHOLD + list(range(THRESHOLD, 256)))
    paint, coat = _coat(rng, mask, unit)
    cutout = Image.composite(Image.new("RGB", mask.size), paint, shade)
    cutout.putalpha(mask)
    return Creature(None, cutout, (0, 0), pose, coat, facing, yaw)


def _foreground(rng: np.random.Generator, image: Image.Image, shapes: list[Shape]) -> None:
    """A branch or a bush in front, often across a creature."""
    (w, h), scale, s = image.size, min(image.size), shapes[int(rng.integers(len(shapes)))]
    tx, ty, blobs = rng.uniform(s.x0, s.x1), rng.uniform(s.y0, s.y1), []
    if rng.random() < 0.6:  # a branch from beyond the frame, with twigs ending in leaves
        end = np.array([tx, ty]) + rng.normal(0, 0.1 * scale, 2)
        start = end + 2 * scale * _dir(rng.uniform(-20, 200))
        bark, width = _pick(rng, BARK), max(2, int(rng.uniform(0.01, 0.035) * scale))
        ImageDraw.Draw(image).line([tuple(start), tuple(end)], fill=bark, width=width)
        for t in rng.uniform(0.2, 1.0, int(rng.integers(2, 6))):
            p = start + t * (end - start)
            q = p + rng.normal(0, 0.12 * scale, 2)
            ImageDraw.Draw(image).line([tuple(p), tuple(q)], fill=bark, width=max(1, width // 2))
            blobs.append((q, 0.04 * scale, 0.03 * scale, 12))
    else:  # a bush rising from the bottom
        r = rng.uniform(0.1, 0.3) * scale
        blobs.append(((tx, h), (0.9 * r, 0.6 * r), 0.45 * r, 40))
    blur = rng.uniform(1, 3) * (rng.random() < 0.4)  # out of focus
    _textured(rng, image, Image.new("L", (w, h)), _pick(rng, LEAVES), 90, blobs, blur)


def render_scene(rng: np.random.Generator, width: int, height: int, max_objects: int) -> Scene:
    """An image, its creatures (placed mostly inside and apart, some cut by the border or
    overlapping, drawn far, higher in the image, to near) and its scenery alone."""
    image, frame, taken, placed = _scenery(rng, width, height), np.array([width, height]), [], []
    for c in [_creature(rng, min(width, height)) for _ in range(rng.integers(1, max_objects + 1))]:
        x0, y0, x1, y1 = c.cutout.getbbox()
        size = np.array([x1 - x0, y1 - y0])
        for _ in range(12):
            corner, inside = rng.uniform(0, 1, 2) * (frame - size), size * rng.uniform(0.35, 0.8)
            axis = rng.integers(2)
            if rng.random() < 0.3 and size[axis] >= 24:  # cut by the frame, 35-80% inside it
                corner[axis] = (frame - inside if rng.random() < 0.5 else inside - size)[axis]
            mid = corner + size / 2  # apart from the others, or now and then overlapping:
            if all((abs(mid - m) > r + size / 3).any() for m, r in taken) or rng.random() < 0.15:
                break
        taken.append((mid, size / 3))
        placed.append(dataclasses.replace(c, origin=(round(corner[0]) - x0, round(corner[1]) - y0)))
    placed.sort(key=lambda c: c.origin[1] + c.cutout.getbbox()[3])
    scenery, creatures = image.copy(), []
    for c in placed:
        image.paste(c.cutout, c.origin, c.cutout)
        box = np.add(c.cutout.getbbox(), c.origin * 2).clip(0, [width, height] * 2)
        shape = Shape(CATEGORY, *(round(float(v), 2) for v in box))
        creatures.append(dataclasses.replace(c, shape=shape))
    if rng.random() < 0.4:
        _foreground(rng, image, [c.shape for c in creatures])
    amount = rng.uniform(0.2, 1.0)
    grain = _crop(rng, _tiles()[0], width, height).point(lambda v: int(128 + (v - 128) * amount))
    image = ImageChops.add(image, grain, 1.0, -128)
    return Scene(image, creatures, ImageChops.add(scenery, grain, 1.0, -128))


def render_image(
    rng: np.random.Generator, width: int, height: int, max_objects: int
) -> tuple[Image.Image, list[Shape]]:
    """One image and its creatures' boxes (tight around each silhouette, clipped to the image)."""
    scene = render_scene(rng, width, height, max_objects)
    return scene.image, [c.shape for c in scene.creatures]
