"""Procedural scenes with KNOWN motion for Stillflow's motion model: what models/training/data.py makes
training samples from.

A scene is a painter's stack of layers (sky with clouds, sea, river, waterfall strips, splash pools, still
land: rocks, forest, grass, sand, trees in front), each with its own texture and its own motion; the target
field is the motion of the top-most layer at each pixel. Everything is drawn from the ``rng`` given, so a
seed gives the same scene every time.

Units follow core/README.md: row 0 = top, ``M[..., 0] = dx`` (+ right), ``M[..., 1] = dy`` (+ down), pixels per
frame. Scenes are drawn at the scale of the model's working size (about 512 px on the long side): texture
sizes and speeds are in pixels of a 512 px image, so a 160 px training crop is a window into such a picture.

Physical priors the scenes carry (and that a horizontal flip keeps): waterfalls fall down and speed up; sea
waves come toward the viewer (down the image) or toward the shore; rivers flow along their bed, downhill in
the picture where the bed is tilted; clouds drift sideways (left or right at random). Land never moves.

    make_scene(rng, h, w) -> dict(rgb (H,W,3) float32 [0,1], motion (H,W,2) float32, mask (H,W) float32, kind)

A quick look: python -m stillflow.models.training.scenes OUT.png
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from ...core.field import MOTION_THRESHOLD

# ----------------------------------------------------------------------------------------------------------
# noise helpers


def _noise(rng, h, w, cell_y, cell_x, octaves=4, persistence=0.5):
    """Fractal value noise in [0, 1] with feature size about (cell_y, cell_x) pixels (anisotropic)."""
    out = np.zeros((h, w), np.float32)
    amp, total = 1.0, 0.0
    cy, cx = float(cell_y), float(cell_x)
    for _ in range(octaves):
        sy, sx = max(cy, 1.0), max(cx, 1.0)
        gh = max(2, int(math.ceil(h / sy)) + 2)
        gw = max(2, int(math.ceil(w / sx)) + 2)
        grid = rng.random((gh, gw), dtype=np.float32)
        big = cv2.resize(
            grid, (max(w, int(gw * sx) + 1), max(h, int(gh * sy) + 1)), interpolation=cv2.INTER_CUBIC
        )
        oy = int(rng.integers(0, max(1, big.shape[0] - h)))
        ox = int(rng.integers(0, max(1, big.shape[1] - w)))
        out += amp * big[oy : oy + h, ox : ox + w]
        total += amp
        amp *= persistence
        cy, cx = cy / 2.0, cx / 2.0
        if cy < 1 and cx < 1:
            break
    out /= total
    lo, hi = np.percentile(out, 1), np.percentile(out, 99)
    return np.clip((out - lo) / max(hi - lo, 1e-6), 0.0, 1.0).astype(np.float32)


def _oriented_noise(rng, h, w, along, across, angle, octaves=4):
    """Streaky noise elongated along direction ``angle`` (radians, image axes: x right, y down)."""
    d = int(math.ceil(math.hypot(h, w))) + 4
    n = _noise(rng, d, d, across, along, octaves)  # elongated along x
    m = cv2.getRotationMatrix2D((d / 2, d / 2), -math.degrees(angle), 1.0)
    r = cv2.warpAffine(n, m, (d, d), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    oy, ox = (d - h) // 2, (d - w) // 2
    return r[oy : oy + h, ox : ox + w]


def _smoothstep(e0, e1, x):
    t = np.clip((x - e0) / max(e1 - e0, 1e-6), 0.0, 1.0)
    return t * t * (3 - 2 * t)


def _col(c):
    return np.asarray(c, np.float32).reshape(1, 1, 3)


def _jitter_col(rng, c, amount=0.06):
    return np.clip(np.asarray(c, np.float32) + rng.normal(0, amount, 3), 0.0, 1.0)


def _mix(a, b, t):
    t = t[..., None] if t.ndim == 2 else t
    return a * (1 - t) + b * t


def _ridge(rng, w, base, amp, cell):
    """A 1-D fractal line: y coordinate per column."""
    n = _noise(rng, 1, w, 1, cell, octaves=5)[0]
    return base + amp * (n - 0.5) * 2


# ----------------------------------------------------------------------------------------------------------
# palettes (sRGB, [0,1])

SKY = [
    ((0.25, 0.45, 0.80), (0.70, 0.82, 0.95)),
    ((0.35, 0.55, 0.85), (0.85, 0.90, 0.97)),
    ((0.55, 0.58, 0.62), (0.80, 0.80, 0.82)),
    ((0.30, 0.35, 0.60), (0.95, 0.65, 0.45)),
    ((0.15, 0.30, 0.60), (0.60, 0.75, 0.90)),
]
WATER = [
    (0.05, 0.35, 0.55),
    (0.10, 0.55, 0.65),
    (0.05, 0.25, 0.40),
    (0.20, 0.45, 0.45),
    (0.15, 0.40, 0.60),
    (0.10, 0.60, 0.75),
    (0.25, 0.35, 0.30),
    (0.35, 0.45, 0.55),
]
ROCK = [
    (0.45, 0.42, 0.38),
    (0.55, 0.48, 0.38),
    (0.35, 0.33, 0.32),
    (0.62, 0.58, 0.50),
    (0.40, 0.30, 0.22),
    (0.70, 0.65, 0.55),
]
FOREST = [(0.10, 0.22, 0.10), (0.15, 0.28, 0.12), (0.08, 0.15, 0.10), (0.22, 0.30, 0.15)]
GRASS = [(0.30, 0.45, 0.18), (0.40, 0.50, 0.25), (0.25, 0.38, 0.20), (0.50, 0.52, 0.30)]
SAND = [(0.80, 0.72, 0.58), (0.72, 0.65, 0.52), (0.88, 0.82, 0.70), (0.65, 0.58, 0.45)]


# ----------------------------------------------------------------------------------------------------------
# textures


def _tex_land(rng, h, w, kind=None):
    kind = kind or rng.choice(["rock", "forest", "grass", "sand"], p=[0.4, 0.25, 0.15, 0.2])
    if kind == "rock":
        c0 = _jitter_col(rng, ROCK[rng.integers(len(ROCK))])
        n1 = _noise(rng, h, w, rng.uniform(20, 80), rng.uniform(20, 80), 5, 0.6)
        n2 = _noise(rng, h, w, rng.uniform(3, 8), rng.uniform(3, 8), 3, 0.6)
        shade = 0.45 + 0.8 * n1 * 0.7 + 0.3 * n2
        img = _col(c0) * shade[..., None]
        cracks = _smoothstep(0.06, 0.0, np.abs(_noise(rng, h, w, 25, 25, 3) - 0.5))
        img = img * (1 - 0.5 * cracks[..., None])
        if rng.random() < 0.4:  # moss / bushes
            moss = _smoothstep(0.6, 0.75, _noise(rng, h, w, 15, 15, 4))
            img = _mix(img, _col(_jitter_col(rng, FOREST[rng.integers(len(FOREST))])) * 1.3, moss * 0.8)
    elif kind == "forest":
        c0 = _jitter_col(rng, FOREST[rng.integers(len(FOREST))], 0.04)
        n = _noise(rng, h, w, rng.uniform(4, 12), rng.uniform(4, 12), 4, 0.65)
        n2 = _noise(rng, h, w, 40, 40, 3)
        img = _col(c0) * (0.4 + 1.2 * n[..., None]) * (0.7 + 0.6 * n2[..., None])
    elif kind == "grass":
        c0 = _jitter_col(rng, GRASS[rng.integers(len(GRASS))])
        n = _noise(rng, h, w, rng.uniform(30, 90), rng.uniform(30, 90), 5, 0.55)
        n2 = _noise(rng, h, w, 2.5, 2.5, 2)
        img = _col(c0) * (0.7 + 0.5 * n[..., None] + 0.2 * n2[..., None])
    else:
        c0 = _jitter_col(rng, SAND[rng.integers(len(SAND))], 0.04)
        n = _noise(rng, h, w, rng.uniform(30, 100), rng.uniform(60, 160), 4, 0.5)
        n2 = _noise(rng, h, w, 2, 2, 2)
        img = _col(c0) * (0.85 + 0.25 * n[..., None] + 0.08 * n2[..., None])
    return np.clip(img, 0, 1).astype(np.float32)


def _tex_water(rng, h, w, angle, calm=None, foam=None):
    """Water with streaks/waves elongated across (waves) or along (river) the given angle."""
    c0 = _jitter_col(rng, WATER[rng.integers(len(WATER))], 0.05)
    along = rng.uniform(15, 60)
    across = along / rng.uniform(2.5, 7)
    n = _oriented_noise(rng, h, w, along, across, angle, 4)
    calm = rng.uniform(0.2, 0.7) if calm is None else calm
    img = _col(c0) * (0.75 + calm * 0.8 * (n[..., None] - 0.5) + 0.25)
    # glints
    g = _oriented_noise(rng, h, w, along * 0.4, across * 0.4, angle, 2)
    img = img + _smoothstep(0.8, 0.95, g)[..., None] * rng.uniform(0.0, 0.35)
    foam = rng.uniform(0.0, 0.5) if foam is None else foam
    if foam > 0:
        f = _oriented_noise(rng, h, w, along * 0.7, across * 0.6, angle, 4)
        thr = 1.0 - foam * 0.6
        fm = _smoothstep(thr, thr + 0.12, f)
        img = _mix(img, _col(_jitter_col(rng, (0.92, 0.95, 0.97), 0.03)), fm * 0.95)
    return np.clip(img, 0, 1).astype(np.float32)


def _tex_sky(rng, h, w, horizon):
    top, bot = SKY[rng.integers(len(SKY))]
    top, bot = _jitter_col(rng, top, 0.05), _jitter_col(rng, bot, 0.05)
    yy = np.clip(np.arange(h, dtype=np.float32) / max(horizon, 1.0), 0, 1)[:, None] * np.ones(
        (1, w), np.float32
    )
    img = _mix(_col(top) * np.ones((h, w, 3), np.float32), _col(bot), yy)
    cover = rng.uniform(0.0, 0.9) if rng.random() < 0.8 else 0.0
    if cover > 0.02:
        cell = rng.uniform(25, 120)
        n = _noise(rng, h, w, cell, cell * rng.uniform(1.2, 3.5), 6, 0.55)
        thr = 1.0 - cover
        c = _smoothstep(thr, thr + rng.uniform(0.05, 0.35), n)
        shade = _noise(rng, h, w, cell * 0.4, cell * 0.6, 3)
        white = _jitter_col(rng, (0.95, 0.95, 0.96), 0.03)
        grey = white * rng.uniform(0.5, 0.85)
        ccol = _mix(_col(white) * np.ones((h, w, 3), np.float32), _col(grey), shade * rng.uniform(0.3, 1.0))
        img = _mix(img, ccol, c)
    return np.clip(img, 0, 1).astype(np.float32), cover


# ----------------------------------------------------------------------------------------------------------
# scenes: each builder returns lists of layers (alpha (H,W), rgb (H,W,3), motion (H,W,2))


def _layers_sky(rng, h, w, horizon):
    sky, cover = _tex_sky(rng, h, w, horizon)
    alpha = np.ones((h, w), np.float32)
    mot = np.zeros((h, w, 2), np.float32)
    if cover > 0.05:
        s = rng.uniform(0.3, 1.6) * rng.choice([-1, 1])
        yy = np.arange(h, dtype=np.float32)[:, None] / max(horizon, 1.0)
        speed = s * (1.3 - 0.7 * np.clip(yy, 0, 1))  # far clouds (near the horizon) look slower
        mot[..., 0] = speed
        mot[..., 1] = rng.uniform(-0.08, 0.08) * abs(s)
    return [(alpha, sky, mot)]


def _layers_sea(rng, h, w, horizon, top_edge=None):
    """Sea below a horizon line; waves come toward the viewer, faster closer to the camera."""
    yy = np.arange(h, dtype=np.float32)[:, None] * np.ones((1, w), np.float32)
    edge = top_edge if top_edge is not None else np.full(w, horizon, np.float32)
    alpha = (yy >= edge[None, :]).astype(np.float32)
    depth = np.clip((yy - edge[None, :]) / max(h - horizon, 8.0), 0, 1.5)
    tex = _tex_water(rng, h, w, angle=rng.uniform(-0.15, 0.15), foam=rng.uniform(0, 0.5))
    # perspective: darker, finer far away
    tex = tex * (0.85 + 0.15 * np.clip(depth, 0, 1))[..., None]
    s = rng.uniform(0.4, 2.2)
    lat = rng.uniform(-0.5, 0.5)
    mag = s * (0.25 + 1.0 * depth)
    mot = np.stack([lat * mag, mag], -1).astype(np.float32)
    return [(alpha, np.clip(tex, 0, 1), mot)]


def _layers_shore(rng, h, w):
    """Aerial/oblique beach: a wavy shoreline, sand on one side, sea with foam on the other; waves move to shore."""
    ang = rng.uniform(0, 2 * math.pi)  # direction the waves travel (toward the sand)
    d = np.array([math.cos(ang), math.sin(ang)], np.float32)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    # signed distance along d from a wavy shoreline through a random point
    cx, cy = rng.uniform(0.3, 0.7) * w, rng.uniform(0.3, 0.7) * h
    t = (xx - cx) * d[0] + (yy - cy) * d[1]
    perp = -(xx - cx) * d[1] + (yy - cy) * d[0]
    wav = (_noise(rng, 1, int(abs(perp).max() * 2 + 4), 1, rng.uniform(40, 120), 4)[0] - 0.5) * rng.uniform(
        10, 50
    )
    t = t - wav[np.clip((perp + abs(perp).max()).astype(int), 0, len(wav) - 1)]
    sea_a = (t < 0).astype(np.float32)
    sand = _tex_land(rng, h, w, "sand")
    tex = _tex_water(rng, h, w, angle=ang + math.pi / 2, foam=rng.uniform(0.1, 0.6))
    # foam band along the shoreline
    band = rng.uniform(8, 40)
    fn = _noise(rng, h, w, 6, 6, 3)
    foam = _smoothstep(-band, 0, t) * _smoothstep(0.3, 0.6, fn)
    tex = _mix(tex, _col((0.93, 0.95, 0.96)), np.clip(foam, 0, 1))
    s = rng.uniform(0.5, 2.5)
    mag = s * (0.5 + 0.5 * _smoothstep(-3 * band, 0, t))
    mot = (mag[..., None] * d[None, None, :]).astype(np.float32)
    # wet sand: static, darker
    wet = _smoothstep(rng.uniform(10, 40), 0, t) * (t >= 0)
    sand = sand * (1 - 0.3 * wet[..., None])
    return [(np.ones((h, w), np.float32), sand, np.zeros((h, w, 2), np.float32)), (sea_a, tex, mot)]


def _band_mask(rng, h, w, angle, width, curvy=True):
    """A winding band (river) through the image along ``angle``; returns alpha, local direction (unit) map."""
    d = np.array([math.cos(angle), math.sin(angle)], np.float32)
    nrm = np.array([-d[1], d[0]], np.float32)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    cx, cy = rng.uniform(0.25, 0.75) * w, rng.uniform(0.25, 0.75) * h
    s = (xx - cx) * d[0] + (yy - cy) * d[1]
    n = (xx - cx) * nrm[0] + (yy - cy) * nrm[1]
    L = int(math.hypot(h, w)) * 2 + 8
    amp = rng.uniform(0, 0.6) * width * 2 if curvy else 0.0
    wave = (_noise(rng, 1, L, 1, rng.uniform(60, 200), 3)[0] - 0.5) * 2 * amp
    idx = np.clip((s + L / 2).astype(int), 0, L - 1)
    off = wave[idx]
    grad = np.gradient(wave)[idx]
    dist = n - off
    wmod = width * (0.8 + 0.4 * _noise(rng, 1, L, 1, 80, 2)[0][idx])
    alpha = (np.abs(dist) < wmod / 2).astype(np.float32)
    # local flow direction: along the centre line (d + grad * nrm), normalised
    dirx = d[0] + grad * nrm[0]
    diry = d[1] + grad * nrm[1]
    nn = np.sqrt(dirx**2 + diry**2) + 1e-6
    prof = 1.0 - (np.clip(np.abs(dist) / (wmod / 2), 0, 1)) ** 2  # faster in the middle
    return alpha, np.stack([dirx / nn, diry / nn], -1).astype(np.float32), prof.astype(np.float32)


def _layers_river(rng, h, w):
    angle = rng.uniform(-math.pi / 2.2, math.pi / 2.2)
    if abs(math.sin(angle)) > 0.15 and math.sin(angle) < 0:  # flow downhill in the picture
        angle += math.pi
    elif abs(math.sin(angle)) <= 0.15 and rng.random() < 0.5:
        angle += math.pi
    width = rng.uniform(25, 110)
    alpha, dirs, prof = _band_mask(rng, h, w, angle, width)
    tex = _tex_water(rng, h, w, angle, calm=rng.uniform(0.3, 0.9), foam=rng.uniform(0, 0.35))
    s = rng.uniform(0.5, 2.5)
    mot = dirs * (s * (0.4 + 0.6 * prof))[..., None]
    # banks: darker edge
    return [(alpha, tex, mot.astype(np.float32))]


def _layers_waterfall(rng, h, w):
    layers = []
    n_falls = int(rng.integers(1, 4))
    for _ in range(n_falls):
        width = rng.uniform(4, 90) if rng.random() < 0.7 else rng.uniform(90, 200)
        cx = rng.uniform(0.1, 0.9) * w
        top = rng.uniform(-0.3, 0.5) * h
        bot = rng.uniform(max(top + 0.3 * h, 0.5 * h), 1.3 * h)
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        L = h + 4
        wob = (_noise(rng, 1, L, 1, rng.uniform(40, 120), 3)[0] - 0.5) * rng.uniform(0, 0.6) * width
        wmod = width * (0.7 + 0.6 * _noise(rng, 1, L, 1, 60, 3)[0])
        # fall widens slightly downward
        frac = np.clip((yy - top) / max(bot - top, 1.0), 0, 1)
        wy = wmod[np.clip(yy.astype(int), 0, L - 1)] * (1 + rng.uniform(0, 0.8) * frac)
        dx = xx - cx - wob[np.clip(yy.astype(int), 0, L - 1)]
        edge_n = _noise(rng, h, w, 20, 4, 3)
        alpha = ((np.abs(dx) < wy / 2 * (0.8 + 0.4 * edge_n)) & (yy >= top) & (yy <= bot)).astype(np.float32)
        n = _noise(rng, h, w, rng.uniform(30, 120), rng.uniform(1.5, 5), 4, 0.6)
        base = _jitter_col(rng, (0.90, 0.93, 0.95), 0.04)
        shade = 0.65 + 0.4 * n
        if rng.random() < 0.5:  # see-through thin curtain: some rock colour shows
            shade = shade * (0.8 + 0.2 * _noise(rng, h, w, 40, 8, 2))
        tex = np.clip(_col(base) * shade[..., None], 0, 1)
        v0 = rng.uniform(1.2, 4.5)
        mag = v0 * (0.6 + 0.8 * frac)
        mot = np.stack([rng.uniform(-0.05, 0.05) * mag, mag], -1).astype(np.float32)
        layers.append((alpha, tex, mot))
        # splash pool at the bottom
        if bot < h and rng.random() < 0.7:
            r = rng.uniform(1.0, 3.0) * max(width, 20)
            ry = r * rng.uniform(0.3, 0.6)
            ddx, ddy = (xx - cx) / r, (yy - bot) / ry
            rad = np.sqrt(ddx**2 + ddy**2)
            pa = ((rad < 1.0) & (yy >= bot - ry * 0.3)).astype(np.float32)
            ptex = _tex_water(rng, h, w, angle=0.0, foam=rng.uniform(0.3, 0.8))
            un = np.stack([xx - cx, (yy - bot) * 1.5], -1)
            un = un / (np.linalg.norm(un, axis=-1, keepdims=True) + 1e-3)
            pm = (un * (rng.uniform(0.4, 1.5) * (1.2 - 0.8 * np.clip(rad, 0, 1)))[..., None]).astype(
                np.float32
            )
            layers.append((pa, ptex, pm))
    return layers


def _layers_trees(rng, h, w):
    """Still foreground vegetation (palms, trees) or rocks, overlapping whatever is behind."""
    layers = []
    for _ in range(int(rng.integers(0, 3))):
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        cx, cy = rng.uniform(-0.2, 1.2) * w, rng.uniform(0.0, 1.2) * h
        rx, ry = rng.uniform(15, 120), rng.uniform(15, 150)
        rad = np.sqrt(((xx - cx) / rx) ** 2 + ((yy - cy) / ry) ** 2)
        n = _noise(rng, h, w, rng.uniform(4, 14), rng.uniform(4, 14), 4)
        alpha = ((rad + 0.6 * (n - 0.5)) < 1.0).astype(np.float32)
        tex = _tex_land(rng, h, w, rng.choice(["forest", "rock"], p=[0.6, 0.4]))
        layers.append((alpha, tex, np.zeros((h, w, 2), np.float32)))
    return layers


def make_scene(rng, h=192, w=192):
    """One procedural scene (image, true motion field, true motion mask) at 512-px working scale."""
    kind = rng.choice(["coast", "waterfall", "river", "shore", "landscape"], p=[0.25, 0.25, 0.2, 0.15, 0.15])
    layers = []
    if kind in ("coast", "landscape"):
        horizon = rng.uniform(-0.1, 0.7) * h
        layers += _layers_sky(rng, h, w, max(horizon, 1.0))
        if kind == "coast":
            layers += _layers_sea(rng, h, w, horizon)
            if rng.random() < 0.7:  # land coming in from one side or the bottom
                yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
                ridge = _ridge(
                    rng, w, rng.uniform(horizon, h * 1.1), rng.uniform(10, 60), rng.uniform(30, 120)
                )
                side = rng.uniform(0.0, 0.6) * w
                lt = rng.choice([0, 1, 2])
                if lt == 0:
                    alpha = (yy > ridge[None, :]).astype(np.float32)
                elif lt == 1:
                    alpha = (xx < side + 30 * (_noise(rng, h, 1, 40, 1, 3)[:, :1] - 0.5)).astype(np.float32)
                else:
                    alpha = (xx > w - side + 30 * (_noise(rng, h, 1, 40, 1, 3)[:, :1] - 0.5)).astype(
                        np.float32
                    )
                alpha = alpha * (yy > horizon - rng.uniform(0, 60))
                land = _tex_land(rng, h, w, "sand" if lt == 0 and rng.random() < 0.5 else None)
                layers.append((alpha, land, np.zeros((h, w, 2), np.float32)))
                if lt == 0 and rng.random() < 0.5:  # surf line where the sea meets a beach in front
                    fy = ridge[None, :] - yy
                    band = rng.uniform(4, 25)
                    foam = ((fy > 0) & (fy < band)).astype(np.float32) * _smoothstep(
                        0.3, 0.55, _noise(rng, h, w, 5, 20, 3)
                    )
                    ftex = _mix(layers[-2][1], _col((0.93, 0.95, 0.96)), foam)
                    layers.append((((fy > 0) & (fy < band)).astype(np.float32), ftex, layers[-2][2]))
        else:
            ridge = _ridge(
                rng, w, max(horizon, 0) + rng.uniform(0, 40), rng.uniform(10, 80), rng.uniform(30, 200)
            )
            yy = np.arange(h, dtype=np.float32)[:, None]
            alpha = (yy > ridge[None, :]).astype(np.float32)
            layers.append(
                (
                    alpha,
                    _tex_land(rng, h, w, rng.choice(["rock", "forest", "grass"])),
                    np.zeros((h, w, 2), np.float32),
                )
            )
            if rng.random() < 0.4:  # a river on the land only
                ra, rt, rm = _layers_river(rng, h, w)[0]
                layers.append((ra * alpha, rt, rm))
    elif kind == "waterfall":
        layers.append(
            (
                np.ones((h, w), np.float32),
                _tex_land(rng, h, w, rng.choice(["rock", "forest"])),
                np.zeros((h, w, 2), np.float32),
            )
        )
        if rng.random() < 0.3:
            horizon = rng.uniform(0.05, 0.3) * h
            sky = _layers_sky(rng, h, w, horizon)[0]
            yy = np.arange(h, dtype=np.float32)[:, None]
            ridge = _ridge(rng, w, horizon, 20, 60)
            layers.append(
                ((yy < ridge[None, :]).astype(np.float32) * np.ones((h, w), np.float32), sky[1], sky[2])
            )
        if rng.random() < 0.4:  # pool / river below
            horizon = rng.uniform(0.6, 0.95) * h
            edge = _ridge(rng, w, horizon, 8, 60)
            layers += _layers_sea(rng, h, w, horizon, top_edge=edge)
        layers += _layers_waterfall(rng, h, w)
        if rng.random() < 0.5:  # rocks partly in front of the fall
            layers += _layers_trees(rng, h, w)[:1]
    elif kind == "river":
        layers.append((np.ones((h, w), np.float32), _tex_land(rng, h, w), np.zeros((h, w, 2), np.float32)))
        layers += _layers_river(rng, h, w)
        if rng.random() < 0.3:
            layers += _layers_river(rng, h, w)
    else:
        layers += _layers_shore(rng, h, w)
    layers += _layers_trees(rng, h, w)

    rgb = np.zeros((h, w, 3), np.float32)
    mot = np.zeros((h, w, 2), np.float32)
    for alpha, tex, m in layers:
        # slightly soft edges for the picture, hard edges for the motion
        a_soft = cv2.GaussianBlur(alpha, (0, 0), 0.7)[..., None]
        rgb = rgb * (1 - a_soft) + tex * a_soft
        sel = alpha > 0.5
        mot[sel] = m[sel]
    rgb = photometric(rng, rgb)
    mag = np.linalg.norm(mot, axis=-1)
    mask = (mag > MOTION_THRESHOLD).astype(np.float32)
    mot = mot * mask[..., None]
    return {"rgb": rgb, "motion": mot.astype(np.float32), "mask": mask, "kind": str(kind)}


def photometric(rng, rgb):
    """Colour jitter: exposure, contrast, saturation, white balance, gamma, blur, sensor noise."""
    img = rgb * rng.uniform(0.75, 1.2)
    img = (img - 0.5) * rng.uniform(0.8, 1.25) + 0.5
    grey = img.mean(-1, keepdims=True)
    img = grey + (img - grey) * rng.uniform(0.6, 1.4)
    img = img * _col(1 + rng.normal(0, 0.05, 3))
    img = np.clip(img, 0, 1) ** rng.uniform(0.8, 1.25)
    if rng.random() < 0.3:
        img = cv2.GaussianBlur(img, (0, 0), rng.uniform(0.3, 1.2))
    img = img + rng.normal(0, rng.uniform(0, 0.02), img.shape).astype(np.float32)
    return np.clip(img, 0, 1).astype(np.float32)


# ----------------------------------------------------------------------------------------------------------
# hints


if __name__ == "__main__":  # quick look: python -m stillflow.models.training.scenes OUT.png
    import sys

    out = sys.argv[1] if len(sys.argv) > 1 else "/tmp/scenes.png"
    tiles = []
    for s in range(16):
        sc = make_scene(np.random.default_rng(s), 192, 192)
        m = sc["motion"]
        mag = np.linalg.norm(m, axis=-1)
        hsv = np.zeros((192, 192, 3), np.uint8)
        hsv[..., 0] = ((np.arctan2(m[..., 1], m[..., 0]) + np.pi) / (2 * np.pi) * 179).astype(np.uint8)
        hsv[..., 1] = 255
        hsv[..., 2] = np.clip(mag / 3 * 255, 0, 255).astype(np.uint8)
        flow = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)
        tiles.append(np.concatenate([(sc["rgb"] * 255).astype(np.uint8), flow], 0))
    grid = np.concatenate([np.concatenate(tiles[i * 8 : (i + 1) * 8], 1) for i in range(2)], 0)
    cv2.imwrite(out, cv2.cvtColor(grid, cv2.COLOR_RGB2BGR))
    print(out)
