"""The weight-free scene model against ground-truth depth, not against itself.

Scenes are ray-cast with exact per-pixel depth, textured with real photographs of grass, gravel and
brick (scikit-image's texture photos): an open field under a sky, a street (field plus a brick wall
across the view), a brick wall filling the frame (a close-up: constant depth), a gravel table top seen
from above (constant depth), and the field upside down (depth growing downwards). The model must give a
depth that orders the scene like the truth where the layout cue exists, and *no* structure (the
neutral form: a constant map) where it does not: inventing a ramp on a wall or a flipped scene is the
failure that put haze on faces.
"""
from __future__ import annotations

import cv2
import numpy as np
import pytest
from scipy.stats import spearmanr

from pairforge.degradations.realworld.scene import analyse

SIZE = 192
SS = 2  # supersampling


def _texture(name: str) -> np.ndarray:
    from skimage import data

    t = getattr(data, name)().astype(np.float32) / 255.0
    return np.repeat(t[..., None], 3, axis=2) if t.ndim == 2 else t[..., :3]


def _tint(t: np.ndarray, rgb) -> np.ndarray:
    return np.clip(t * np.asarray(rgb, np.float32) / max(float(t.mean()), 1e-3) * 0.5, 0, 1)


def _rays(n: int, pitch_deg: float, fov_deg: float = 60.0):
    f = (n / 2) / np.tan(np.deg2rad(fov_deg) / 2)
    v, u = np.mgrid[0:n, 0:n].astype(np.float64) + 0.5
    d = np.stack([(u - n / 2) / f, -(v - n / 2) / f, np.ones((n, n))], -1)
    p = np.deg2rad(pitch_deg)  # positive: looking down
    rot = np.array([[1, 0, 0], [0, np.cos(p), np.sin(p)], [0, -np.sin(p), np.cos(p)]])
    d = d @ rot.T
    return d / np.linalg.norm(d, axis=-1, keepdims=True)


def _lookup(tex: np.ndarray, a: np.ndarray, b: np.ndarray, scale: float) -> np.ndarray:
    h, w = tex.shape[:2]
    a, b = np.nan_to_num(a, posinf=0.0, neginf=0.0), np.nan_to_num(b, posinf=0.0, neginf=0.0)  # rays that miss
    mx = np.mod(a * scale, w).astype(np.float32)
    my = np.mod(b * scale, h).astype(np.float32)
    return cv2.remap(tex, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_WRAP)


def _sky(d: np.ndarray) -> np.ndarray:
    e = np.clip(d[..., 1], 0, 1)[..., None]
    top, horizon = np.array([0.35, 0.5, 0.85]), np.array([0.78, 0.84, 0.92])
    return (horizon + (top - horizon) * e).astype(np.float32)


def render(kind: str) -> tuple[np.ndarray, np.ndarray]:
    """(uint8 RGB image, depth in metres with inf for the sky), SIZE x SIZE."""
    n = SIZE * SS
    if kind in ("field", "street", "flipped"):
        d = _rays(n, pitch_deg=12.0)
        cam_h = 1.6
        img = _sky(d)
        depth = np.full((n, n), np.inf)
        down = d[..., 1] < -1e-6
        t = np.where(down, cam_h / np.maximum(-d[..., 1], 1e-9), np.inf)
        ground = _tint(_texture("grass"), (0.35, 0.55, 0.2))
        col = _lookup(ground, t * d[..., 0], t * d[..., 2], 60.0)
        img = np.where(down[..., None], col, img)
        depth = np.where(down, t, depth)
        if kind == "street":
            wall_z = 25.0
            tw = np.where(d[..., 2] > 0, wall_z / d[..., 2], np.inf)
            hit_y = cam_h + tw * d[..., 1]
            wall = (tw < t) & (hit_y > 0) & (hit_y < 9.0)
            brick = _tint(_texture("brick"), (0.6, 0.35, 0.3))
            col_w = _lookup(brick, tw * d[..., 0], 9.0 - hit_y, 60.0)
            img = np.where(wall[..., None], col_w, img)
            depth = np.where(wall, tw, depth)
        if kind == "flipped":
            img, depth = img[::-1], depth[::-1]
    elif kind == "wall":  # a brick wall 2 m away, filling the frame
        d = _rays(n, pitch_deg=0.0)
        t = 2.0 / d[..., 2]
        img = _lookup(_tint(_texture("brick"), (0.6, 0.4, 0.35)), t * d[..., 0], t * d[..., 1], 250.0)
        depth = t
    elif kind == "table":  # gravel seen from 0.8 m straight above
        d = _rays(n, pitch_deg=90.0)
        t = 0.8 / np.maximum(-d[..., 1], 1e-9)
        img = _lookup(_tint(_texture("gravel"), (0.55, 0.5, 0.45)), t * d[..., 0], t * d[..., 2], 500.0)
        depth = t
    else:
        raise ValueError(kind)
    img = cv2.resize(np.clip(img, 0, 1).astype(np.float32), (SIZE, SIZE), interpolation=cv2.INTER_AREA)
    depth = depth.reshape(SIZE, SS, SIZE, SS).max(axis=(1, 3))
    return np.clip(np.rint(img * 255), 0, 255).astype(np.uint8), depth


def dusk() -> tuple[np.ndarray, np.ndarray]:
    """The field at dusk: a dark sky brightening to a glow over the horizon, with the sensor noise a dim
    sky shows most where it is graded. The low sky then has more gradient (and noise) than the global
    smooth-sky threshold allows, which is what stopped the sky well above the horizon of the rocket
    photo and put a near, clear band into a hazed sky."""
    img, depth = render("field")
    h = img.shape[0]
    sky = ~np.isfinite(depth)
    y = np.arange(h)[:, None] / h
    glow = np.clip((y - 0.25) / 0.45, 0, 1) ** 2
    dark, warm = np.array([0.08, 0.1, 0.25]), np.array([0.75, 0.5, 0.45])
    col = dark + (warm - dark) * glow[..., None]
    noise = np.random.default_rng(0).normal(0, 1, (h, h))[..., None] * (0.003 + 0.012 * glow[..., None])
    f = np.where(sky[..., None], col + noise, img.astype(np.float32) / 255)
    return np.clip(np.rint(f * 255), 0, 255).astype(np.uint8), depth


def person() -> tuple[np.ndarray, np.ndarray]:
    """The field with someone standing 3 m away at the left edge of the frame (the frame cuts them), in
    dark textured clothes, their head above the horizon (they are taller than the camera is high): the
    cameraman's layout. Ray-cast: a box 0.6 m deep from x = -3 m to -0.4 m, 2.2 m tall."""
    img, depth = render("field")
    n = SIZE * SS
    d = _rays(n, pitch_deg=12.0)
    z = 3.0
    t = np.where(d[..., 2] > 0, z / d[..., 2], np.inf)
    hx, hy = t * d[..., 0], 1.6 + t * d[..., 1]
    hit = (hx > -3.0) & (hx < -0.4) & (hy > 0.0) & (hy < 2.2)
    cloth = _tint(_texture("gravel"), (0.12, 0.1, 0.1)) * 0.5
    col = _lookup(cloth, hx, 2.2 - hy, 300.0)
    big = cv2.resize(img.astype(np.float32) / 255, (n, n), interpolation=cv2.INTER_NEAREST)
    full = np.where(hit[..., None], col, big)
    dep = np.where(hit, t, np.inf)
    img = cv2.resize(np.clip(full, 0, 1).astype(np.float32), (SIZE, SIZE), interpolation=cv2.INTER_AREA)
    dep = dep.reshape(SIZE, SS, SIZE, SS).min(axis=(1, 3))
    depth = np.where(np.isfinite(dep), dep, depth)
    return np.clip(np.rint(img * 255), 0, 255).astype(np.uint8), depth


@pytest.mark.parametrize("kind", ["field", "street", "dusk", "person"])
def test_layout_depth_orders_the_scene_like_the_truth(kind):
    img, gt = {"dusk": dusk, "person": person}.get(kind, lambda: render(kind))()
    sc = analyse(img)
    assert sc.depth_form == "layout", sc.info
    d = sc.depth()
    finite = np.where(np.isfinite(gt), gt, gt[np.isfinite(gt)].max() * 10)
    rho = spearmanr(d.ravel(), finite.ravel()).statistic
    assert rho > 0.75, (kind, rho)
    # the sky is the farthest thing in the map, the bottom rows the nearest
    assert d[~np.isfinite(gt)].mean() > 0.95 and d[-SIZE // 8:].mean() < 0.3
    # all of the sky: no band of it above the horizon comes out near
    assert np.quantile(d[~np.isfinite(gt)], 0.05) > 0.7, (kind, np.quantile(d[~np.isfinite(gt)], 0.05))
    if kind == "person":  # their head, above the horizon, is as near as they stand, not as far as the sky
        head = np.isfinite(gt) & (gt < 5) & (np.arange(SIZE)[:, None] < 0.6 * SIZE)
        assert head.sum() > 200 and float(d[head].mean()) < 0.3, float(d[head].mean())


@pytest.mark.parametrize("kind", ["wall", "table", "flipped"])
def test_no_usable_cue_gives_no_invented_structure(kind):
    img, gt = render(kind)
    sc = analyse(img)
    assert sc.depth_form == "neutral", (kind, sc.info)
    d = sc.depth()
    assert float(d.std()) == 0.0  # a constant: the depth-dependent types go scene-neutral
    # what the old vertical prior would have claimed is wrong here (a ramp on a flat or flipped scene)
    ramp = np.repeat(np.linspace(1.0, 0.0, SIZE)[:, None], SIZE, axis=1)
    finite = np.where(np.isfinite(gt), gt, gt[np.isfinite(gt)].max() * 10)
    if kind == "flipped":
        assert spearmanr(ramp.ravel(), finite.ravel()).statistic < -0.5


def test_bundled_close_ups_are_neutral_and_outdoor_photos_have_a_layout():
    from pairforge.sources.bundled import load_bundled_photo

    for name in ("astronaut", "chelsea", "coffee", "motorcycle_left"):
        assert analyse(load_bundled_photo(name)).depth_form == "neutral", name
    for name in ("camera", "rocket"):
        im = load_bundled_photo(name)
        im = np.repeat(im[..., None], 3, axis=2) if im.ndim == 2 else im
        sc = analyse(im)
        assert sc.depth_form == "layout", name
        d = sc.depth()
        assert d[: d.shape[0] // 6].mean() > d[-d.shape[0] // 6:].mean() + 0.5  # sky far, foreground near


def test_subject_matte_is_soft_and_found_only_when_it_stands_out(photos):
    from pairforge.degradations.realworld.scene import Scene

    # a red disc on a textured grey background: found, soft edged, in place
    rng = np.random.default_rng(0)
    bg = np.clip(120 + rng.normal(0, 12, (128, 128, 1)), 0, 255).repeat(3, 2).astype(np.uint8)
    img = bg.copy()
    cv2.circle(img, (64, 70), 30, (200, 40, 40), -1)
    sc = Scene(img)
    m = sc.subject()
    assert m is not None and m[70, 64] > 0.9 and m[5, 5] < 0.05
    edge = m[70, 64 + 30 - 4:64 + 30 + 5]
    assert ((edge > 0.05) & (edge < 0.95)).sum() >= 3  # a feathered boundary, not a hard seam
    # a texture with no subject (brick) and a frame-filling subject (the cat's face): none
    from pairforge.sources.bundled import load_bundled_photo

    brick = load_bundled_photo("brick")
    brick = np.repeat(brick[..., None], 3, axis=2) if brick.ndim == 2 else brick
    assert not Scene(brick).has_subject
    assert not Scene(photos[2]).has_subject


def test_segments_follow_the_requested_count(photos):
    sc = analyse(photos[0])
    for n in (2, 5, 12, 30):
        lab = sc.segments(n)
        assert lab.shape == photos[0].shape[:2] and np.array_equal(np.unique(lab), np.arange(n))


def test_subject_is_the_whole_person_and_leaves_the_sky_alone(photos, photo_of):
    """A subject's parts stand out from the background by different amounts: the astronaut's orange
    suit strongly, her face and hair against the mottled backdrop less. The matte takes the head with
    the suit (else object motion moves a headless suit and subject-focused defocus blurs the face),
    and a graded dusk sky around the rocket stays background (it continues the border's sky)."""
    from pairforge.degradations.realworld.scene import Scene

    m = Scene(photos[0]).subject()
    assert m is not None
    assert m[24, 57] > 0.8 and m[90, 40] > 0.8, (m[24, 57], m[90, 40])  # face, suit
    assert m[10, 100] < 0.1 and m[20, 15] < 0.1  # backdrop, flag
    rocket = Scene(photo_of("rocket", 128)).subject()
    if rocket is not None:
        assert float(rocket[40:90, :40].mean()) < 0.05 and float(rocket[40:90, -40:].mean()) < 0.05


def test_a_tall_narrow_subject_on_the_skyline_is_as_far_as_the_towers(photo_of):
    """The rocket photo's subject is the rocket with its pad (at the frame's bottom) and the floodlit
    base of a tower. Popped up to the depth of its lowest row, the rocket stayed clear in haze while
    the equally far lattice towers faded, and the floodlit tower base was a dark, unhazed blob in the
    fogged distance. A subject rising several camera heights above the horizon for every row its foot
    lies under it, and narrow there, is a structure on the skyline: as far as the sky."""
    from pairforge.degradations.realworld.scene import skyline_structure

    for size in (128, 160, 256):
        img = photo_of("rocket", size)
        sc = analyse(img)
        assert sc.depth_form == "layout" and sc.has_subject, (size, sc.info)
        d = sc.depth()
        h = d.shape[0]
        assert float(d[: int(0.75 * h)].min()) > 0.9, (size, float(d[: int(0.75 * h)].min()))
        assert float(d[-h // 16:].mean()) < 0.3  # the foreground under the horizon stays near
    # the same test on shapes standing in a field whose horizon is row 40 of 64: a person (top to foot
    # about the camera's height above the horizon for each row under it) stands near, even a narrow one
    # far off; a thin mast four times that tall does not; nor does a close-up's head and shoulders
    # (wide) in front of a low horizon
    cb = np.full(64, 40)

    def box(top, foot, x0, x1):
        m = np.zeros((64, 64), bool)
        m[top:foot, x0:x1] = True
        return m

    assert not skyline_structure(box(30, 62, 10, 30), cb)  # a person near the camera
    assert not skyline_structure(box(38, 50, 30, 32), cb)  # a person far off (narrow)
    assert skyline_structure(box(8, 50, 30, 33), cb)  # a mast: 4x as tall above as its foot is under
    assert not skyline_structure(box(4, 64, 16, 48), cb)  # head and shoulders, horizon behind the chest
    assert not skyline_structure(box(44, 60, 20, 40), cb)  # a dog on the lawn: all below the horizon
