"""Synthetic CIFAR-10: ten procedurally drawn classes of upright 32×32 RGB scenes.

Every image is a scene with sky above and ground (or water) below, clutter (clouds, trees, rocks),
and one object of its class standing upright on the ground (or flying): airplane, automobile, bird,
cat, deer, dog, frog, horse, ship, truck. Colour, position, scale, facing direction (left/right),
proportions, texture, lighting and pixel noise vary per image, so the course's tiny CNN has to learn
shapes, and "which way is up" is learnable (the rotation pretext of the CIFAR family).

Drawing is vectorised over a batch of images of one class: each shape is a boolean mask computed from
coordinate grids with per-image parameters of shape (B, 1, 1); scenes are rendered at `supersample`×
resolution and box-filtered down (anti-aliasing). No per-pixel or per-image Python loops.

`generate(n_train, n_test, seed, params)` is called by `dlsys.data.cifar10` (the acquisition stage);
`params` is the `data.cifar10` group of params.yaml. Train and test come from independent random
streams (`SeedSequence([seed, 0])` / `([seed, 1])`): changing n_train does not change the test set.
"""

from __future__ import annotations

import numpy as np

from dlsys.core.params import Params

CLASS_NAMES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
SIZE = 32
_TRAIN_STREAM, _TEST_STREAM = 0, 1


def generate(n_train: int, n_test: int, seed: int, params: Params):
    """Return (x_train, y_train, x_test, y_test, class_names); x uint8 (N, 32, 32, 3), y int64."""
    cfg = _Config.from_params(params)
    x_tr, y_tr = _generate_split(n_train, np.random.default_rng(np.random.SeedSequence([seed, _TRAIN_STREAM])), cfg)
    x_te, y_te = _generate_split(n_test, np.random.default_rng(np.random.SeedSequence([seed, _TEST_STREAM])), cfg)
    return x_tr, y_tr, x_te, y_te, list(CLASS_NAMES)


class _Config:
    """The generator's tunables (params.yaml `data.cifar10`), validated with the key in the message."""

    def __init__(self, **kw):
        self.__dict__.update(kw)

    @classmethod
    def from_params(cls, p: Params) -> "_Config":
        scale = p.list("scale", item_type=(int, float), min_len=2, lo=0.05, hi=1.0)
        if len(scale) != 2 or scale[0] > scale[1]:
            raise p._bad("scale", "[min, max] with min <= max", scale)
        return cls(
            supersample=p.int("supersample", lo=1, hi=4),
            scale=(float(scale[0]), float(scale[1])),
            shift=p.float("shift", lo=0.0, hi=0.5),
            shape_jitter=p.float("shape_jitter", lo=0.0, hi=0.5),
            colour_jitter=p.float("colour_jitter", lo=0.0, hi=1.0),
            texture=p.float("texture", lo=0.0, hi=1.0),
            clutter=p.int("clutter", lo=0, hi=20),
            lighting=p.float("lighting", lo=0.0, hi=1.0),
            noise_std=p.float("noise_std", lo=0.0, hi=0.5),
            close_up=p.float("close_up", lo=0.0, hi=1.0),
            close_up_zoom=p.float("close_up_zoom", lo=1.0, hi=3.0),
            chunk=p.int("chunk", lo=1),
        )


def _generate_split(n: int, rng: np.random.Generator, cfg: _Config):
    # Exactly balanced labels (as CIFAR-10 is), in a seeded random order.
    y = rng.permutation(np.arange(n, dtype=np.int64) % len(CLASS_NAMES))
    x = np.empty((n, SIZE, SIZE, 3), dtype=np.uint8)
    for c, name in enumerate(CLASS_NAMES):
        idx = np.flatnonzero(y == c)
        for lo in range(0, len(idx), cfg.chunk):
            part = idx[lo:lo + cfg.chunk]
            x[part] = _render(name, len(part), rng, cfg)
    return x, y


# ---------------------------------------------------------------------------------------------------
# Shapes: boolean masks (B, H, W) from coordinate grids and per-image parameters of shape (B, 1, 1).
# Local object coordinates: u points the way the object faces, v points down, unit = object scale.

def _ellipse(u, v, cu, cv, ru, rv):
    return ((u - cu) / ru) ** 2 + ((v - cv) / rv) ** 2 <= 1.0


def _rect(u, v, u0, v0, u1, v1):
    return (u >= u0) & (u <= u1) & (v >= v0) & (v <= v1)


def _poly(u, v, pts):
    """Convex polygon (vertices in either winding order) as the intersection of half-planes."""
    sides = []
    for (a_u, a_v), (b_u, b_v) in zip(pts, pts[1:] + pts[:1]):
        sides.append((b_u - a_u) * (v - a_v) - (b_v - a_v) * (u - a_u))
    pos = np.ones(np.broadcast_shapes(*(s.shape for s in sides)), dtype=bool)
    neg = pos.copy()
    for s in sides:
        pos &= s >= 0
        neg &= s <= 0
    return pos | neg


def _segment(u, v, u0, v0, u1, v1, width):
    du, dv = u1 - u0, v1 - v0
    t = np.clip(((u - u0) * du + (v - v0) * dv) / (du * du + dv * dv + 1e-9), 0.0, 1.0)
    return (u - u0 - t * du) ** 2 + (v - v0 - t * dv) ** 2 <= (width / 2) ** 2


def _interp_matrix(cells: int, res: int) -> np.ndarray:
    """(res, cells+1) linear-interpolation weights from a coarse grid to `res` pixel centres."""
    pos = np.linspace(0, cells, res, dtype=np.float32)
    i0 = np.minimum(pos.astype(int), cells - 1)
    f = pos - i0
    w = np.zeros((res, cells + 1), dtype=np.float32)
    w[np.arange(res), i0] = 1 - f
    w[np.arange(res), i0 + 1] = f
    return w


class _Canvas:
    """A batch of images at supersampled resolution, painted back to front.

    The background (sky, ground) is a float image; objects are painted as layer ids into a uint8 map
    (cheap boolean writes) with one colour per image and layer, and resolved to RGB once in `finish`.
    """

    def __init__(self, b: int, rng: np.random.Generator, cfg: _Config):
        self.b, self.rng, self.cfg = b, rng, cfg
        self.res = SIZE * cfg.supersample
        grid = (np.arange(self.res, dtype=np.float32) + 0.5) / self.res
        self.y = grid[None, :, None]
        self.x = grid[None, None, :]
        self.img = np.zeros((b, self.res, self.res, 3), dtype=np.float32)  # background
        self.ids = np.zeros((b, self.res, self.res), dtype=np.uint8)  # 0 = background, k = layer k
        self.layers: list[np.ndarray] = [np.zeros((b, 3), dtype=np.float32)]
        self.tex: list[float] = [0.0]

    def rand(self, lo, hi):
        return self.rng.uniform(lo, hi, size=(self.b, 1, 1)).astype(np.float32)

    def colour(self, base, spread=1.0):
        """Per-image colours around `base` (RGB in [0,1], or a list to pick from), jittered."""
        base = np.asarray(base, dtype=np.float32).reshape(-1, 3)
        pick = base[self.rng.integers(0, len(base), size=self.b)]
        jit = self.rng.normal(0.0, self.cfg.colour_jitter * spread * 0.25, size=(self.b, 3))
        return np.clip(pick + jit, 0.0, 1.0).astype(np.float32)[:, None, None, :]

    def noise_field(self, cells: int):
        """Smooth random field in roughly [-1, 1]: bilinear upsampling of a cells×cells grid (W g Wᵀ)."""
        g = self.rng.uniform(-1.0, 1.0, size=(self.b, cells + 1, cells + 1)).astype(np.float32)
        w = _interp_matrix(cells, self.res)
        return w @ g @ w.T

    def bg_textured(self, col, cells: int, amount: float):
        """A per-pixel background colour: `col` modulated by a smooth texture (params `texture`)."""
        return np.clip(col * (1.0 + self.cfg.texture * amount * self.noise_field(cells)[..., None]), 0.0, 1.0)

    def textured(self, col, amount: float = 1.0):
        """An object colour with surface texture (a fine noise field shared by the image's layers)."""
        return (col, amount)

    def paint(self, mask, col):
        col, tex = col if isinstance(col, tuple) else (col, 0.0)
        if len(self.layers) >= 255:
            raise RuntimeError("synthetic CIFAR: more than 254 layers in one scene")
        self.layers.append(np.asarray(col, dtype=np.float32).reshape(self.b, 3))
        self.tex.append(tex)
        np.copyto(self.ids, np.uint8(len(self.layers) - 1), where=mask)

    def finish(self):
        s, cfg, b = self.cfg.supersample, self.cfg, self.b
        palette = np.stack(self.layers, axis=1).reshape(-1, 3)  # (B*L, 3)
        ids = self.ids.astype(np.intp)
        flat = ids + (np.arange(b) * len(self.layers))[:, None, None]
        fg = np.take(palette, flat, axis=0)
        tex = np.asarray(self.tex, dtype=np.float32)[ids] * cfg.texture
        fg *= (1.0 + tex * self.noise_field(8))[..., None]
        img = np.where((ids == 0)[..., None], self.img, fg)
        img = img.reshape(b, SIZE, s, SIZE, s, 3).mean(axis=(2, 4))
        gain = 1.0 + cfg.lighting * self.rng.uniform(-0.35, 0.25, size=(b, 1, 1, 1))
        tint = 1.0 + cfg.lighting * self.rng.normal(0.0, 0.06, size=(b, 1, 1, 3))
        img = img * gain * tint + self.rng.normal(0.0, cfg.noise_std, size=img.shape)
        return np.clip(np.rint(img * 255.0), 0, 255).astype(np.uint8)


_SKY = [[0.35, 0.55, 0.90], [0.55, 0.70, 0.90], [0.75, 0.80, 0.85], [0.95, 0.65, 0.45], [0.60, 0.62, 0.68]]
_GRASS = [[0.30, 0.55, 0.20], [0.45, 0.60, 0.25], [0.55, 0.45, 0.25], [0.65, 0.60, 0.45], [0.40, 0.40, 0.38]]
_WATER = [[0.15, 0.35, 0.60], [0.20, 0.45, 0.55], [0.25, 0.30, 0.45]]
_ROAD = [[0.40, 0.40, 0.42], [0.55, 0.55, 0.55], [0.35, 0.33, 0.30], [0.55, 0.50, 0.40]]
_FOREST = [[0.20, 0.40, 0.18], [0.35, 0.45, 0.20], [0.45, 0.40, 0.22]]
_BRIGHT = [[0.85, 0.10, 0.10], [0.10, 0.25, 0.80], [0.95, 0.85, 0.15], [0.90, 0.90, 0.90], [0.12, 0.12, 0.14],
           [0.20, 0.60, 0.25], [0.60, 0.60, 0.65], [0.95, 0.50, 0.10]]
_FUR = [[0.55, 0.35, 0.20], [0.30, 0.20, 0.12], [0.85, 0.75, 0.60], [0.20, 0.20, 0.20], [0.90, 0.90, 0.88],
        [0.75, 0.50, 0.25], [0.55, 0.55, 0.55]]
_HORSE = [[0.45, 0.28, 0.15], [0.25, 0.15, 0.08], [0.15, 0.12, 0.10], [0.85, 0.83, 0.80], [0.60, 0.45, 0.30]]
_DEER = [[0.60, 0.40, 0.22], [0.50, 0.33, 0.18], [0.70, 0.52, 0.32]]
_FROG = [[0.30, 0.60, 0.20], [0.45, 0.55, 0.20], [0.50, 0.40, 0.20], [0.60, 0.65, 0.30]]
_DARK = [[0.08, 0.08, 0.08]]

# Per class: background ("sky", "ground", "water", "road", "forest"), horizon range, object placement.
_SCENES = {
    "airplane": ("ground", (0.75, 1.05), "air"),
    "automobile": ("road", (0.35, 0.6), "ground"),
    "bird": ("ground", (0.55, 0.95), "any"),
    "cat": ("ground", (0.35, 0.65), "ground"),
    "deer": ("forest", (0.35, 0.6), "ground"),
    "dog": ("ground", (0.35, 0.65), "ground"),
    "frog": ("ground", (0.15, 0.45), "ground"),
    "horse": ("ground", (0.35, 0.6), "ground"),
    "ship": ("water", (0.35, 0.6), "water"),
    "truck": ("road", (0.35, 0.6), "ground"),
}
# Object's lowest point in local units (v of its feet/wheels/keel), used to stand it on the ground.
_CONTACT = {"automobile": 0.52, "truck": 0.52, "cat": 0.66, "dog": 0.62, "horse": 0.86, "deer": 0.86,
            "frog": 0.45, "bird": 0.5, "ship": 0.2, "airplane": 0.0}


def _render(name: str, b: int, rng: np.random.Generator, cfg: _Config) -> np.ndarray:
    cv = _Canvas(b, rng, cfg)
    ground_kind, (h_lo, h_hi), placement = _SCENES[name]
    horizon = cv.rand(h_lo, h_hi)
    _background(cv, ground_kind, horizon)
    # Close-ups (params `close_up`): the object large on a plain backdrop with no horizon, as many real
    # CIFAR photos are; there only the object's own shape tells which way is up.
    close = (rng.random((b, 1, 1)) < cfg.close_up) if cfg.close_up > 0 else np.zeros((b, 1, 1), dtype=bool)
    _clutter(cv, horizon, ground_kind, allowed=~close)
    if close.any():
        backdrop = cv.bg_textured(cv.colour(_SKY + _GRASS + _ROAD + _FUR), cells=4, amount=0.6)
        np.copyto(cv.img, backdrop, where=close[..., None])

    # Object pose: scale, position, facing direction (mirror), standing on the ground where it should.
    s = cv.rand(*cfg.scale)
    cx = 0.5 + cv.rand(-cfg.shift, cfg.shift)
    contact = _CONTACT[name]
    s_close = np.minimum(s * cfg.close_up_zoom, 0.5)
    if placement == "air":
        cy = cv.rand(0.2, 0.6)
    elif placement == "any":
        perched = rng.random((b, 1, 1)) < 0.5
        cy = np.where(perched, horizon + cv.rand(0.0, 0.08) - contact * s, cv.rand(0.2, 0.5)).astype(np.float32)
    else:
        foot = np.minimum(horizon + cv.rand(0.02, 0.3), 0.97)
        if placement == "water":
            foot = np.minimum(horizon + cv.rand(0.02, 0.15), 0.97)
        cy = foot - contact * s
    if close.any():  # centred vertically: the object's middle near the image's, a little jitter
        cy = np.where(close, 0.5 + cv.rand(-0.06, 0.06) - 0.5 * contact * s_close, cy).astype(np.float32)
        s = np.where(close, s_close, s).astype(np.float32)
    facing = np.where(rng.random((b, 1, 1)) < 0.5, -1.0, 1.0).astype(np.float32)
    u = facing * (cv.x - cx) / s
    v = (cv.y - cy) / s
    _OBJECTS[name](cv, u, v)
    return cv.finish()


def _background(cv: _Canvas, kind: str, horizon):
    sky_top = cv.colour(_SKY)
    sky_low = np.clip(sky_top + 0.25, 0, 1)
    t = np.clip(cv.y / np.maximum(horizon, 0.05), 0, 1)[..., None]
    sky = sky_top * (1 - t) + sky_low * t
    cv.img[:] = cv.bg_textured(sky, cells=3, amount=0.3)
    palette = {"ground": _GRASS, "forest": _FOREST, "water": _WATER, "road": _ROAD}[kind]
    g = cv.colour(palette)
    depth = np.clip((cv.y - horizon) / 0.5, 0, 1)[..., None]
    ground = g * (0.85 + 0.3 * depth)  # nearer ground is lighter: a vertical cue
    if kind == "water":
        waves = 1.0 + 0.12 * np.sin(cv.y * cv.rand(60, 110)[..., None] + cv.rand(0, 6.3)[..., None])
        ground = ground * waves
    ground = cv.bg_textured(ground, cells=8, amount=1.0)
    np.copyto(cv.img, ground, where=(cv.y >= horizon)[..., None])


def _clutter(cv: _Canvas, horizon, kind: str, allowed):
    """Clouds in the sky, trees on the horizon, rocks/bushes on the ground; how many: params `clutter`;
    only in the images where `allowed` (B, 1, 1)."""
    n = cv.cfg.clutter
    for _ in range(n):
        kind_draw = cv.rng.integers(0, 3, size=(cv.b, 1, 1))
        present = (cv.rng.random((cv.b, 1, 1)) < 0.6) & allowed
        x0 = cv.rand(0.0, 1.0)
        # cloud
        cy = cv.rand(0.05, 0.35) * np.minimum(horizon, 1.0)
        cloud = _ellipse(cv.x, cv.y, x0, cy, cv.rand(0.06, 0.2), cv.rand(0.02, 0.06))
        cv.paint(cloud & present & (kind_draw == 0), cv.colour([[0.95, 0.95, 0.97], [0.8, 0.8, 0.85]]))
        # tree: trunk below canopy, standing on the horizon (or a bit below)
        base = horizon + cv.rand(0.0, 0.08)
        th = cv.rand(0.08, 0.25)
        trunk = _rect(cv.x, cv.y, x0 - 0.012, base - th, x0 + 0.012, base)
        canopy = _ellipse(cv.x, cv.y, x0, base - th, cv.rand(0.04, 0.09), th * 0.6)
        tree = (kind_draw == 1) & present & (kind != "water")
        cv.paint(trunk & tree, cv.colour([[0.35, 0.22, 0.12]]))
        cv.paint(canopy & tree, cv.textured(cv.colour(_FOREST)))
        # rock / bush on the ground, flat side down
        gy = horizon + cv.rand(0.02, 0.4)
        rw = cv.rand(0.03, 0.08)
        rock = _ellipse(cv.x, cv.y, x0, gy, rw, rw * 0.6) & (cv.y <= gy)
        cv.paint(rock & present & (kind_draw == 2) & (kind != "water"),
                 cv.textured(cv.colour([[0.5, 0.5, 0.5], [0.35, 0.45, 0.2], [0.55, 0.45, 0.35]])))


def _j(cv: _Canvas, base: float):
    """A proportion `base` jittered per image by params `shape_jitter`."""
    return base * (1.0 + cv.rand(-cv.cfg.shape_jitter, cv.cfg.shape_jitter))


def _airplane(cv, u, v):
    body = cv.textured(cv.colour([[0.9, 0.9, 0.92], [0.7, 0.72, 0.75], [0.8, 0.2, 0.2], [0.2, 0.3, 0.6]]), amount=0.3)
    accent = cv.colour(_BRIGHT)
    span = _j(cv, 0.55)
    cv.paint(_poly(u, v, [(0.2, 0.0), (-0.15, 0.0), (-0.45, span), (-0.3, span)]), accent)  # far wing (below)
    cv.paint(_ellipse(u, v, 0.0, 0.0, 1.0, _j(cv, 0.14)), body)
    fin = _j(cv, 0.5)
    cv.paint(_poly(u, v, [(-0.98, -0.05), (-0.62, -0.05), (-0.95, -fin)]), accent)  # tail fin points up
    cv.paint(_poly(u, v, [(-0.95, 0.02), (-0.7, 0.02), (-1.05, 0.18)]), body)
    cv.paint(_ellipse(u, v, 0.78, -0.04, 0.12, 0.05), cv.colour(_DARK))  # cockpit
    cv.paint(_poly(u, v, [(0.25, 0.03), (-0.1, 0.03), (-0.5, -span * 0.6), (-0.35, -span * 0.6)]), body)


def _automobile(cv, u, v):
    paint = cv.textured(cv.colour(_BRIGHT), amount=0.3)
    roof = _j(cv, 0.5)
    cv.paint(_rect(u, v, -1.0, -0.15, 1.0, 0.3) | _ellipse(u, v, 0.9, 0.07, 0.12, 0.23), paint)
    cv.paint(_poly(u, v, [(-0.6, -0.14), (0.5, -0.14), (0.25, -roof), (-0.5, -roof)]), paint)
    cv.paint(_poly(u, v, [(-0.45, -0.17), (0.4, -0.17), (0.2, -roof + 0.08), (-0.38, -roof + 0.08)]),
             cv.colour([[0.6, 0.75, 0.85], [0.25, 0.3, 0.35]]))
    r = _j(cv, 0.22)
    for wu in (-0.62, 0.62):
        cv.paint(_ellipse(u, v, wu, 0.3, r, r), cv.colour(_DARK))
        cv.paint(_ellipse(u, v, wu, 0.3, r * 0.4, r * 0.4), cv.colour([[0.7, 0.7, 0.7]]))
    cv.paint(_ellipse(u, v, 0.95, -0.02, 0.06, 0.05), cv.colour([[1.0, 0.95, 0.6]]))


def _truck(cv, u, v):
    cab, box = cv.textured(cv.colour(_BRIGHT), amount=0.3), cv.textured(cv.colour(_BRIGHT + _FUR), amount=0.4)
    top = _j(cv, 0.9)
    cv.paint(_rect(u, v, -1.05, -top, 0.38, 0.22), box)
    cv.paint(_rect(u, v, 0.42, -0.55, 1.0, 0.28), cab)
    cv.paint(_rect(u, v, 0.62, -0.47, 0.95, -0.15), cv.colour([[0.6, 0.75, 0.85], [0.25, 0.3, 0.35]]))
    cv.paint(_rect(u, v, -1.05, 0.22, 1.0, 0.3), cv.colour(_DARK))
    r = _j(cv, 0.2)
    for wu in (-0.75, -0.35, 0.72):
        cv.paint(_ellipse(u, v, wu, 0.32, r, r), cv.colour(_DARK))
        cv.paint(_ellipse(u, v, wu, 0.32, r * 0.4, r * 0.4), cv.colour([[0.7, 0.7, 0.7]]))


def _bird(cv, u, v):
    fur = cv.textured(cv.colour(_BRIGHT + _FUR), amount=0.5)
    cv.paint(_segment(u, v, -0.9, 0.52, 0.9, 0.52, 0.08) & (cv.rng.random((cv.b, 1, 1)) < 0.5),
             cv.colour([[0.35, 0.22, 0.12]]))  # sometimes a branch under it
    for lu in (-0.05, 0.15):
        cv.paint(_segment(u, v, lu, 0.2, lu, 0.5, 0.06), cv.colour([[0.8, 0.5, 0.1]]))  # legs down
    cv.paint(_poly(u, v, [(-0.45, -0.05), (-1.0, -0.25), (-1.0, 0.1)]), fur)  # tail
    cv.paint(_ellipse(u, v, 0.0, 0.0, _j(cv, 0.55), _j(cv, 0.3)), fur)
    cv.paint(_ellipse(u, v, -0.1, -0.06, 0.38, 0.14), cv.colour(_BRIGHT + _FUR))  # wing
    hr = _j(cv, 0.24)
    cv.paint(_ellipse(u, v, 0.5, -0.32, hr, hr), fur)
    cv.paint(_poly(u, v, [(0.5 + hr * 0.9, -0.38), (0.5 + hr * 0.9, -0.26), (0.98, -0.32)]),
             cv.colour([[0.95, 0.6, 0.1], [0.2, 0.2, 0.2]]))  # beak
    cv.paint(_ellipse(u, v, 0.57, -0.38, 0.06, 0.06), cv.colour(_DARK))


def _cat(cv, u, v):
    fur = cv.textured(cv.colour(_FUR), amount=0.6)
    cv.paint(_segment(u, v, -0.35, 0.55, -0.75, _j(cv, 0.05), 0.12), fur)  # tail curls up
    cv.paint(_ellipse(u, v, 0.0, 0.15, _j(cv, 0.42), 0.52), fur)  # sitting body, taller than wide
    hr = _j(cv, 0.32)
    hv = 0.15 - 0.52 - hr * 0.6
    cv.paint(_ellipse(u, v, 0.12, hv, hr, hr * 0.9), fur)
    ear = _j(cv, 0.3)
    cv.paint(_poly(u, v, [(-0.18, hv - hr * 0.5), (0.05, hv - hr * 0.8), (-0.15, hv - hr - ear)]), fur)
    cv.paint(_poly(u, v, [(0.2, hv - hr * 0.8), (0.42, hv - hr * 0.5), (0.4, hv - hr - ear)]), fur)
    eye = cv.colour([[0.6, 0.8, 0.2], [0.9, 0.7, 0.1]])
    cv.paint(_ellipse(u, v, 0.02, hv - 0.03, 0.07, 0.06) | _ellipse(u, v, 0.25, hv - 0.03, 0.07, 0.06), eye)
    cv.paint(_ellipse(u, v, -0.12, 0.62, 0.14, 0.06) | _ellipse(u, v, 0.18, 0.62, 0.14, 0.06), fur)  # paws


def _quadruped(cv, u, v, col, legs, body_r, head, neck=None, tail=None, leg_w=0.12):
    """Body over four legs pointing down, head at the front; shared by dog, horse and deer."""
    leg_len = _j(cv, legs)
    for lu in (-0.52, -0.34, 0.34, 0.52):
        cv.paint(_segment(u, v, lu * body_r[0] / 0.6, 0.0, lu * body_r[0] / 0.6 + 0.03, leg_len, leg_w), col)
    if tail is not None:
        cv.paint(_segment(u, v, *tail, 0.1), cv.colour(_DARK + _FUR))
    cv.paint(_ellipse(u, v, 0.0, 0.0, _j(cv, body_r[0]), _j(cv, body_r[1])), col)
    if neck is not None:
        cv.paint(_segment(u, v, *neck, 0.24), col)
    cv.paint(_ellipse(u, v, *head), col)


def _dog(cv, u, v):
    fur = cv.textured(cv.colour(_FUR), amount=0.6)
    _quadruped(cv, u, v, fur, legs=0.6, body_r=(0.6, 0.27), head=(0.68, -0.38, 0.26, 0.24),
               neck=(0.45, -0.05, 0.62, -0.3), tail=(-0.55, -0.05, -0.9, _j(cv, -0.4)))
    cv.paint(_ellipse(u, v, 0.95, -0.3, 0.16, 0.1), fur)  # snout
    cv.paint(_ellipse(u, v, 1.08, -0.33, 0.05, 0.05), cv.colour(_DARK))  # nose
    cv.paint(_ellipse(u, v, 0.55, -0.3, 0.08, _j(cv, 0.2)), cv.colour(_FUR))  # floppy ear hangs down
    cv.paint(_ellipse(u, v, 0.75, -0.45, 0.04, 0.04), cv.colour(_DARK))


def _horse(cv, u, v):
    coat = cv.textured(cv.colour(_HORSE), amount=0.4)
    _quadruped(cv, u, v, coat, legs=0.86, body_r=(0.7, 0.3), head=(0.95, -0.62, 0.24, 0.12),
               neck=(0.45, -0.1, 0.78, -0.65), tail=(-0.68, -0.1, -0.85, _j(cv, 0.45)), leg_w=0.11)
    cv.paint(_segment(u, v, 0.4, -0.3, 0.7, -0.8, 0.08), cv.colour(_DARK + _HORSE))  # mane
    cv.paint(_segment(u, v, 0.72, -0.72, 0.74, -0.85, 0.06), coat)  # ear


def _deer(cv, u, v):
    coat = cv.textured(cv.colour(_DEER), amount=0.5)
    _quadruped(cv, u, v, coat, legs=0.86, body_r=(0.6, 0.26), head=(0.8, -0.78, 0.2, 0.11),
               neck=(0.42, -0.1, 0.66, -0.72), tail=(-0.6, -0.1, -0.7, -0.22), leg_w=0.08)
    cv.paint(_ellipse(u, v, 0.0, 0.12, 0.45, 0.1), cv.colour([[0.9, 0.85, 0.75]]))  # pale belly
    antler = cv.colour([[0.45, 0.35, 0.25], [0.7, 0.62, 0.5]])
    h = _j(cv, 0.45)
    for du in (-0.05, 0.12):  # antlers branch upwards
        cv.paint(_segment(u, v, 0.7 + du, -0.85, 0.62 + du, -0.85 - h, 0.05), antler)
        cv.paint(_segment(u, v, 0.65 + du, -0.85 - h * 0.5, 0.82 + du, -0.85 - h * 0.85, 0.05), antler)


def _frog(cv, u, v):
    skin = cv.textured(cv.colour(_FROG), amount=0.8)
    cv.paint(_ellipse(u, v, -0.55, 0.25, 0.38, 0.2), skin)  # folded back leg
    cv.paint(_segment(u, v, 0.45, 0.1, 0.6, 0.42, 0.12), skin)  # front leg
    cv.paint(_ellipse(u, v, 0.0, 0.05, _j(cv, 0.75), _j(cv, 0.36)), skin)
    cv.paint(_ellipse(u, v, 0.1, 0.2, 0.55, 0.15), cv.colour([[0.85, 0.85, 0.6], [0.7, 0.75, 0.45]]))  # belly
    er = _j(cv, 0.13)
    for eu in (0.3, 0.55):  # eyes bulge on top
        cv.paint(_ellipse(u, v, eu, -0.3, er, er), skin)
        cv.paint(_ellipse(u, v, eu, -0.33, er * 0.5, er * 0.5), cv.colour(_DARK))


def _ship(cv, u, v):
    hull = cv.textured(cv.colour([[0.15, 0.15, 0.18], [0.7, 0.15, 0.12], [0.9, 0.9, 0.9], [0.2, 0.25, 0.45]]),
                       amount=0.3)
    top = cv.colour([[0.95, 0.95, 0.95], [0.8, 0.8, 0.75], [0.6, 0.6, 0.6]])
    cv.paint(_segment(u, v, 0.25, -0.1, 0.25, -_j(cv, 1.0), 0.05), cv.colour(_DARK))  # mast
    cv.paint(_rect(u, v, -0.62, -_j(cv, 0.5), 0.15, -0.08), top)  # superstructure
    cv.paint(_rect(u, v, -0.42, -_j(cv, 0.85), -0.2, -0.4), cv.colour(_BRIGHT))  # funnel
    cv.paint(_poly(u, v, [(-1.0, -0.12), (1.15, -0.22), (0.82, 0.2), (-0.92, 0.2)]), hull)  # hull, wide at top
    cv.paint(_rect(u, v, -0.55, -0.33, 0.1, -0.27), cv.colour(_DARK))  # window row


_OBJECTS = {"airplane": _airplane, "automobile": _automobile, "bird": _bird, "cat": _cat, "deer": _deer,
            "dog": _dog, "frog": _frog, "horse": _horse, "ship": _ship, "truck": _truck}
