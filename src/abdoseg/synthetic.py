"""The built-in `synthetic` source: abdominal CT phantoms with labels, generated deterministically from a seed.

Anatomy is laid out in patient millimetres (RAS+: x to the patient's right; docs/anatomy.md) around the real
organ volumes, offsets and extents of docs/anatomy.md, then sampled onto each case's own grid (spacing,
field of view, storage orientation and dtype vary per case as they do across real scans). Organs are implicit
shapes (deformed ellipsoids, a tapered liver, bean-shaped kidneys) so that generation stays well under a
second a case on one core; distractors (stomach, bowel, gallbladder, pancreas, vessels, muscle, bone) sit
where they do in real abdomens and take the Hounsfield units the targets take, so that the model must use
shape and place, not intensity alone.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

from . import labels as L
from .preprocess import resize

# Real reference figures (ANATOMY.md): volume mL (mean, sd, min, max); centroid offset from the mean of the
# four organ centroids (x, y, z) and its sd; bounding-box extent (x, y, z), all RAS+ mm.
VOLUME_ML = {
    L.LIVER: (1254.0, 300.0, 881.0, 2224.0),
    L.SPLEEN: (207.0, 72.0, 94.0, 379.0),
    L.KIDNEY_LEFT: (150.0, 40.0, 73.0, 252.0),
    L.KIDNEY_RIGHT: (148.0, 36.0, 97.0, 271.0),
}
OFFSET_MM = {
    L.LIVER: ((69, 37, 32), (9, 7, 11)),
    L.SPLEEN: ((-82, -10, 27), (8, 6, 10)),
    L.KIDNEY_LEFT: ((-55, -13, -26), (7, 5, 8)),
    L.KIDNEY_RIGHT: ((68, -14, -33), (6, 5, 10)),
}
EXTENT_MM = {
    L.LIVER: (203, 166, 155),
    L.SPLEEN: (91, 92, 92),
    L.KIDNEY_LEFT: (68, 57, 104),
    L.KIDNEY_RIGHT: (67, 60, 101),
}

# Hounsfield units per tissue: (non-contrast, portal-venous).
TISSUE_HU: dict[str, tuple[float, float]] = {
    "air": (-1000, -1000),
    "fat": (-100, -100),
    "skin": (30, 30),
    "muscle": (50, 58),
    "bowel_wall": (40, 95),
    "bowel_fluid": (15, 15),
    "gas": (-900, -900),
    "oral_contrast": (280, 280),
    "stomach_fluid": (12, 12),
    "pancreas": (40, 100),
    "aorta": (42, 165),
    "ivc": (40, 130),
    "liver": (55, 115),
    "gallbladder": (10, 10),
    "spleen": (48, 120),
    "kidney_cortex": (32, 185),
    "kidney_medulla": (28, 120),
    "sinus_fat": (-70, -70),
    "bone_trabecular": (230, 230),
    "bone_cortical": (700, 700),
    "disc": (85, 85),
    "csf": (10, 10),
    "table": (200, 200),
    "liver_lesion": (25, 45),
    "cyst": (5, 5),
}

PATHOLOGIES = ("liver_lesion", "kidney_cyst", "enlarged_spleen", "missing_kidney")


# `resolution: scanner` (issue #16): what a clinical abdominal CT reconstruction looks like, to measure every step at
# full size: 512 x 512 pixels of 0.7-0.9 mm, 200-400 slices of 1-3 mm, at most 600 mm long (chest to pelvis).
SCANNER_MATRIX = 512
SCANNER_PIXEL_MM = (0.7, 0.9)
SCANNER_SLICE_MM = (1.0, 3.0)
SCANNER_SLICES = (200, 400)
SCANNER_MAX_LENGTH_MM = 600.0
RESOLUTIONS = ("coarse", "scanner")


@dataclass(frozen=True)
class SyntheticConfig:
    """What varies across generated cases; the defaults are coarser than real scans, for speed on CPUs."""

    n_cases: int = 30
    seed: int = 0
    resolution: str = "coarse"  # coarse: the two spacings below; scanner: 512 x 512 at 0.7-0.9 mm, 200-400 slices of 1-3 mm
    spacing_inplane: tuple[float, float] = (1.75, 2.5)  # real scans: 0.7-1.0 mm
    slice_thickness: tuple[float, float] = (2.5, 5.0)  # real scans: 1.5-5 mm
    lps_fraction: float = 0.5  # share of cases stored LPS (as ITK/DICOM write them); the rest RAS
    float32_fraction: float = 0.3  # share stored as float32; the rest int16
    contrast_fraction: float = 0.6  # share in portal-venous phase; the rest non-contrast
    fov_cut_fraction: float = 0.15  # share whose field of view cuts the liver dome or the kidneys' lower poles
    pathology_fraction: float = 0.2  # share with one of PATHOLOGIES
    noise_hu: tuple[float, float] = (10.0, 25.0)
    tissue_hu: dict[str, tuple[float, float]] = field(default_factory=lambda: dict(TISSUE_HU))

    @classmethod
    def from_params(cls, params: dict) -> "SyntheticConfig":
        """Build from the `data.synthetic` section of params.yaml (unknown keys are an error)."""
        known = set(cls.__dataclass_fields__)
        unknown = set(params) - known
        if unknown:
            raise ValueError(f"data.synthetic: unknown keys {sorted(unknown)}; known: {sorted(known)}")
        kw = {k: (tuple(v) if isinstance(v, list) else v) for k, v in params.items()}
        if kw.get("resolution", "coarse") not in RESOLUTIONS:
            raise ValueError(f"data.synthetic.resolution: {kw['resolution']!r}; choose one of {RESOLUTIONS}")
        if "tissue_hu" in kw:
            kw["tissue_hu"] = {**TISSUE_HU, **{k: tuple(v) for k, v in kw["tissue_hu"].items()}}
        return cls(**kw)


@dataclass
class Case:
    """One generated case: image (HU, stored dtype), labels (uint8), affine, and what was drawn."""

    image: np.ndarray
    labels: np.ndarray
    affine: np.ndarray
    notes: list[str]


def case_name(index: int) -> str:
    """The case ID of the index-th synthetic case."""
    return f"synth_{index:03d}"


def _rotation(rng: np.random.Generator, max_deg: float) -> np.ndarray:
    """A random rotation matrix of at most `max_deg` degrees about each axis."""
    ax, ay, az = np.deg2rad(rng.uniform(-max_deg, max_deg, 3))
    rx = np.array([[1, 0, 0], [0, np.cos(ax), -np.sin(ax)], [0, np.sin(ax), np.cos(ax)]])
    ry = np.array([[np.cos(ay), 0, np.sin(ay)], [0, 1, 0], [-np.sin(ay), 0, np.cos(ay)]])
    rz = np.array([[np.cos(az), -np.sin(az), 0], [np.sin(az), np.cos(az), 0], [0, 0, 1]])
    return rz @ ry @ rx


class _Grid:
    """World (RAS mm) coordinates of a case's voxel centres, evaluated lazily inside bounding boxes."""

    def __init__(self, origin: np.ndarray, spacing: np.ndarray, shape: tuple[int, int, int]):
        self.origin, self.spacing, self.shape = origin, spacing, shape
        self.axes = [origin[d] + spacing[d] * np.arange(shape[d]) for d in range(3)]

    def box(self, lo: np.ndarray, hi: np.ndarray) -> tuple[slice, ...] | None:
        """Index slices covering world box [lo, hi]; None when it misses the grid."""
        sl = []
        for d in range(3):
            i0 = int(np.floor((lo[d] - self.origin[d]) / self.spacing[d]))
            i1 = int(np.ceil((hi[d] - self.origin[d]) / self.spacing[d])) + 1
            i0, i1 = max(i0, 0), min(i1, self.shape[d])
            if i1 <= i0:
                return None
            sl.append(slice(i0, i1))
        return tuple(sl)

    def coords(self, sl: tuple[slice, ...]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Broadcastable x, y, z coordinate arrays for the voxels in `sl`."""
        x = self.axes[0][sl[0]][:, None, None]
        y = self.axes[1][sl[1]][None, :, None]
        z = self.axes[2][sl[2]][None, None, :]
        return x, y, z


class _Shape:
    """A deformed ellipsoid in a local frame: centre, radii, rotation and a smooth sinusoidal warp.

    `value(x, y, z)` is < 1 inside, the normalised ellipsoid radius; subclasses shape it (taper, bean, crescent).
    """

    def __init__(self, rng: np.random.Generator, centre, radii, rot_deg: float = 10.0, warp: float = 0.08):
        self.c = np.asarray(centre, float)
        self.r = np.asarray(radii, float)
        self.R = _rotation(rng, rot_deg)
        amp = warp * self.r.min()
        # three sinusoids per axis, wavelengths 0.8-2 organ radii: smooth, organic, reproducible
        self.k = rng.normal(size=(3, 3, 3)) / (self.r.mean() * rng.uniform(0.8, 2.0, (3, 3, 1)))
        self.phase = rng.uniform(0, 2 * np.pi, (3, 3))
        self.amp = amp * rng.uniform(0.5, 1.0, (3, 3))
        self._cache = None  # (box key, warped local coordinates) of the last box: paint() asks several times

    def bounds(self, pad: float = 1.35) -> tuple[np.ndarray, np.ndarray]:
        ext = pad * self.r.max() + 5.0
        return self.c - ext, self.c + ext

    def local(self, x, y, z):
        """Local coordinates (along the shape's own axes), warped.

        The warp is smooth (wavelengths of tens of mm), so it is evaluated on every second voxel and repeated:
        an error under a tenth of a millimetre, eight times fewer sines.
        """
        key = (x.shape[0], y.shape[1], z.shape[2], float(x.flat[0]), float(y.flat[0]), float(z.flat[0]))
        if self._cache is not None and self._cache[0] == key:
            return self._cache[1]
        u = self._rotate(x, y, z)
        uc = self._rotate(x[::2], y[:, ::2], z[:, :, ::2])
        shape = np.broadcast_shapes(u[0].shape, u[1].shape, u[2].shape)
        warped = []
        for a in range(3):
            w = np.zeros(np.broadcast_shapes(uc[0].shape, uc[1].shape, uc[2].shape), np.float32)
            for j in range(3):
                k = self.k[a, j]
                w += (self.amp[a, j] * np.sin(k[0] * uc[0] + k[1] * uc[1] + k[2] * uc[2] + self.phase[a, j])).astype(np.float32)
            w = w.repeat(2, 0).repeat(2, 1).repeat(2, 2)[: shape[0], : shape[1], : shape[2]]
            warped.append(u[a] + w)
        self._cache = (key, warped)
        return warped

    def _rotate(self, x, y, z):
        dx, dy, dz = x - self.c[0], y - self.c[1], z - self.c[2]
        R = self.R
        return [R[0, i] * dx + R[1, i] * dy + R[2, i] * dz for i in range(3)]

    def value(self, x, y, z):
        u = self.local(x, y, z)
        return np.sqrt((u[0] / self.r[0]) ** 2 + (u[1] / self.r[1]) ** 2 + (u[2] / self.r[2]) ** 2)

    def scale(self, factor: float) -> None:
        """Grow or shrink every radius (and the warp) by `factor`."""
        self.r = self.r * factor
        self.amp = self.amp * factor
        self.k = self.k / factor
        self._cache = None


class _Liver(_Shape):
    """A big right lobe tapering towards the patient's left, its left lobe riding anterior and high."""

    def value(self, x, y, z):
        u = self.local(x, y, z)
        t = np.clip((u[0] / self.r[0] + 1) / 2, 0, 1)  # 0 at the left tip, 1 at the right edge
        g = 0.35 + 0.65 * t ** 0.7
        uy = u[1] - 0.25 * self.r[1] * (1 - t)
        uz = u[2] - 0.15 * self.r[2] * (1 - t)
        return np.sqrt((u[0] / self.r[0]) ** 2 + (uy / (self.r[1] * g)) ** 2 + (uz / (self.r[2] * g)) ** 2)


class _Kidney(_Shape):
    """A bean: an ellipsoid with a notch (the hilum) on the side that faces the spine."""

    def __init__(self, rng, centre, radii, medial_sign: float, **kw):
        super().__init__(rng, centre, radii, **kw)
        self.medial = medial_sign  # +1 if the spine lies towards +x of this kidney

    def value(self, x, y, z):
        u = self.local(x, y, z)
        base = np.sqrt((u[0] / self.r[0]) ** 2 + (u[1] / self.r[1]) ** 2 + (u[2] / self.r[2]) ** 2)
        # hilum: a ball centred on the medial, slightly anterior edge, notching the bean
        hx = u[0] - self.medial * 1.1 * self.r[0]
        hy = u[1] - 0.25 * self.r[1]
        notch = np.sqrt((hx / (0.45 * self.r[0])) ** 2 + (hy / (0.5 * self.r[1])) ** 2 + (u[2] / (0.3 * self.r[2])) ** 2)
        return np.maximum(base, 2.0 - notch)

    def sinus(self, x, y, z):
        """< 1 inside the renal sinus (fat and vessels at the hilum, within the kidney outline)."""
        u = self.local(x, y, z)
        hx = u[0] - self.medial * 0.35 * self.r[0]
        return np.sqrt((hx / (0.4 * self.r[0])) ** 2 + (u[1] / (0.35 * self.r[1])) ** 2 + (u[2] / (0.5 * self.r[2])) ** 2)


class _Spleen(_Shape):
    """A crescent hugging the left posterior body wall: an ellipsoid with its medial face hollowed."""

    def value(self, x, y, z):
        u = self.local(x, y, z)
        base = np.sqrt((u[0] / self.r[0]) ** 2 + (u[1] / self.r[1]) ** 2 + (u[2] / self.r[2]) ** 2)
        hx = u[0] - 1.1 * self.r[0]  # towards the midline (+x for the left-sided spleen)
        hollow = np.sqrt((hx / (0.8 * self.r[0])) ** 2 + (u[1] / (0.9 * self.r[1])) ** 2 + (u[2] / (0.9 * self.r[2])) ** 2)
        return np.maximum(base, 2.0 - hollow)


def _capsule(x, y, z, p0, p1, radius: float):
    """Normalised distance to a segment p0-p1 (< 1 inside a tube of `radius`)."""
    p0, p1 = np.asarray(p0, float), np.asarray(p1, float)
    d = p1 - p0
    t = ((x - p0[0]) * d[0] + (y - p0[1]) * d[1] + (z - p0[2]) * d[2]) / float(d @ d)
    t = np.clip(t, 0, 1)
    return np.sqrt((x - p0[0] - t * d[0]) ** 2 + (y - p0[1] - t * d[1]) ** 2 + (z - p0[2] - t * d[2]) ** 2) / radius


def _organ_volume_ml(shape: _Shape, step: float = 5.0) -> float:
    """Volume of a shape by counting a coarse grid of points inside it (mL)."""
    lo, hi = shape.bounds()
    ax = [np.arange(lo[d], hi[d], step) + step / 2 for d in range(3)]
    inside = shape.value(ax[0][:, None, None], ax[1][None, :, None], ax[2][None, None, :]) < 1
    return float(inside.sum()) * step ** 3 / 1000.0


def _fit_volume(shape: _Shape, target_ml: float) -> None:
    """Scale a shape so that its volume matches `target_ml` (two fixed-point steps suffice)."""
    for _ in range(2):
        vol = _organ_volume_ml(shape)
        shape.scale((target_ml / max(vol, 1e-3)) ** (1 / 3))


def _draw_volume(rng: np.random.Generator, organ: int, lo_q: float = 0.0) -> float:
    mean, sd, vmin, vmax = VOLUME_ML[organ]
    v = rng.normal(mean, sd)
    lo = vmin + lo_q * (vmax - vmin)
    return float(np.clip(v, lo * 1.08, vmax * 0.92))


def _scan_grid(rng: np.random.Generator, cfg: SyntheticConfig, a: float, b: float, z_lo: float, z_hi: float) -> _Grid:
    """The case's voxel grid round a body of half-width `a` and half-depth `b`, from `z_lo` to `z_hi` (mm).

    `resolution: coarse` draws the spacings of the config; `scanner`, a clinical reconstruction: a 512 matrix of
    0.7-0.9 mm pixels (a patient wider than that field of view is cut at the image's edge, as on scanners) and
    200-400 slices of 1-3 mm, at most 600 mm, reaching down from `z_hi` towards the pelvis.
    """
    sp_xy = rng.uniform(*cfg.spacing_inplane)
    sp_z = rng.uniform(*cfg.slice_thickness)
    fov = 2 * a + rng.uniform(40, 90)
    n_xy = int(np.ceil(fov / sp_xy))  # odd and even sizes both occur
    n_z = int(np.ceil((z_hi - z_lo) / sp_z))
    if cfg.resolution == "scanner":  # drawn after the coarse values, so that a coarse case stays the same
        sp_xy, n_xy = rng.uniform(*SCANNER_PIXEL_MM), SCANNER_MATRIX
        sp_z = rng.uniform(*SCANNER_SLICE_MM)
        n_z = int(min(rng.integers(SCANNER_SLICES[0], SCANNER_SLICES[1] + 1), SCANNER_MAX_LENGTH_MM // sp_z))
        z_lo = z_hi - n_z * sp_z
    spacing = np.array([sp_xy, sp_xy, sp_z])
    origin = np.array([-(n_xy - 1) / 2 * sp_xy, -(n_xy - 1) / 2 * sp_xy - 0.08 * b, z_lo])
    return _Grid(origin, spacing, (n_xy, n_xy, n_z))


def generate_case(index: int, cfg: SyntheticConfig) -> Case:
    """Generate case `index`: the same (index, cfg) always gives the same arrays."""
    rng = np.random.default_rng([cfg.seed, index])
    notes: list[str] = []
    contrast = rng.random() < cfg.contrast_fraction
    phase = 1 if contrast else 0
    notes.append("portal_venous" if contrast else "non_contrast")
    hu = {k: v[phase] + rng.normal(0, 4) for k, v in cfg.tissue_hu.items()}
    hu["air"], hu["gas"] = -1000.0, -900.0 + rng.normal(0, 20)

    pathology = PATHOLOGIES[rng.integers(len(PATHOLOGIES))] if rng.random() < cfg.pathology_fraction else None
    fov_cut = ("superior", "inferior")[rng.integers(2)] if rng.random() < cfg.fov_cut_fraction else None
    lps = rng.random() < cfg.lps_fraction
    dtype = np.float32 if rng.random() < cfg.float32_fraction else np.int16

    # patient: body half-width a (x) and half-depth b (y); organ centroid mean c0 relative to body centre
    a = rng.uniform(140, 185)
    b = a * rng.uniform(0.66, 0.8)
    c0 = np.array([rng.normal(0, 4), -0.22 * b + rng.normal(0, 4), 0.0])

    def centre(organ: int) -> np.ndarray:
        off, sd = OFFSET_MM[organ]
        return c0 + np.asarray(off, float) + rng.normal(0, 1, 3) * np.asarray(sd, float) * 0.7

    shapes: dict[int, _Shape] = {}
    ext = {k: np.asarray(v, float) / 2 for k, v in EXTENT_MM.items()}
    shapes[L.LIVER] = _Liver(rng, centre(L.LIVER), ext[L.LIVER] * [1.0, 0.85, 0.85], rot_deg=8)
    spleen_lo_q = 0.55 if pathology == "enlarged_spleen" else 0.0
    shapes[L.SPLEEN] = _Spleen(rng, centre(L.SPLEEN), ext[L.SPLEEN] * [0.55, 1.0, 1.0], rot_deg=12)
    for organ, medial in ((L.KIDNEY_RIGHT, -1.0), (L.KIDNEY_LEFT, 1.0)):
        k = _Kidney(rng, centre(organ), ext[organ] * [0.8, 0.75, 0.95], medial_sign=medial, rot_deg=6)
        # long axis tilted: upper pole medial and posterior, as in real kidneys
        tilt = np.deg2rad(rng.uniform(8, 18))
        k.R = k.R @ np.array([[1, 0, 0], [0, np.cos(tilt), -np.sin(tilt)], [0, np.sin(tilt), np.cos(tilt)]])
        shapes[organ] = k
    for organ, shape in shapes.items():
        _fit_volume(shape, _draw_volume(rng, organ, spleen_lo_q if organ == L.SPLEEN else 0.0))
    missing = None
    if pathology == "missing_kidney":
        missing = (L.KIDNEY_RIGHT, L.KIDNEY_LEFT)[rng.integers(2)]
        notes.append(f"missing_{L.ORGANS[missing]}")
    elif pathology:
        notes.append(pathology)

    # field of view: z from below the kidneys' lower poles to above the liver dome, unless cut
    zs = [(s.c[2] - 1.1 * s.r.max(), s.c[2] + 1.1 * s.r.max()) for s in shapes.values()]
    z_lo = min(z[0] for z in zs) - rng.uniform(10, 40)
    z_hi = max(z[1] for z in zs) + rng.uniform(5, 30)
    if fov_cut == "superior":
        z_hi = shapes[L.LIVER].c[2] + rng.uniform(0.3, 0.6) * shapes[L.LIVER].r[2]
        notes.append("fov_cut_superior")
    elif fov_cut == "inferior":
        low = min(shapes[L.KIDNEY_RIGHT].c[2], shapes[L.KIDNEY_LEFT].c[2])
        z_lo = low - rng.uniform(0.0, 0.4) * shapes[L.KIDNEY_RIGHT].r[2]
        notes.append("fov_cut_inferior")

    grid = _scan_grid(rng, cfg, a, b, z_lo, z_hi)
    origin, spacing = grid.origin, grid.spacing
    z_lo = origin[2]  # a scanner-resolution scan reaches further down

    vol = np.full(grid.shape, hu["air"], np.float32)
    lab = np.zeros(grid.shape, np.uint8)

    def paint(value_fn, lo, hi, tissue: str | float, label: int | None = None, where=None, thresh: float = 1.0):
        sl = grid.box(np.asarray(lo, float), np.asarray(hi, float))
        if sl is None:
            return None
        x, y, z = grid.coords(sl)
        inside = np.broadcast_to(value_fn(x, y, z) < thresh, tuple(s.stop - s.start for s in sl))
        if where is not None:
            inside = inside & where(x, y, z, sl)
        vol[sl][inside] = hu[tissue] if isinstance(tissue, str) else tissue
        if label is not None:
            lab[sl][inside] = label
        return sl, inside

    full_lo, full_hi = origin - 1, origin + spacing * (np.array(grid.shape) - 1) + 1
    wob = rng.uniform(0, 2 * np.pi, 2)

    def body_r(x, y, z, shrink=0.0):
        theta = np.arctan2(y, x)
        wobble = 1 + 0.03 * np.sin(2 * theta + wob[0]) + 0.02 * np.sin(3 * theta + wob[1])
        depth = np.where(y > 0, b, 0.85 * b) - shrink  # the back is flatter than the belly in a supine patient
        return np.sqrt((x / (a - shrink)) ** 2 + (y / depth) ** 2) / wobble

    fat_sc = rng.uniform(10, 35)
    paint(lambda x, y, z: (np.abs(y + 0.85 * b + 14) / 5) + 0 * x + 0 * z, (-a - 20, -b - 30, z_lo - 5), (a + 20, -0.85 * b, z_hi + 5), "table")
    paint(lambda x, y, z: body_r(x, y, z), full_lo, full_hi, "skin")
    paint(lambda x, y, z: body_r(x, y, z, 2.5), full_lo, full_hi, "fat")
    paint(lambda x, y, z: body_r(x, y, z, fat_sc), full_lo, full_hi, "muscle")
    wall = rng.uniform(9, 15)
    paint(lambda x, y, z: body_r(x, y, z, fat_sc + wall), full_lo, full_hi, "fat")

    # back muscles and psoas, the spine with discs, its canal and posterior elements
    spine_y = -0.42 * b
    for s in (-1, 1):
        paint(lambda x, y, z, s=s: np.maximum(np.sqrt(((x - s * 38) / 28) ** 2 + ((y - spine_y + 38) / 22) ** 2), body_r(x, y, z, fat_sc)) + 0 * z,
              (s * 38 - 30, spine_y - 66, z_lo), (s * 38 + 30, spine_y - 14, z_hi), "muscle")
        paint(lambda x, y, z, s=s: np.sqrt(((x - s * 40) / (8 + 0.12 * np.maximum(c0[2] - z, 0))) ** 2
                                           + ((y - spine_y - 8) / (7 + 0.1 * np.maximum(c0[2] - z, 0))) ** 2),
              (s * 40 - 30, spine_y - 25, z_lo), (s * 40 + 30, spine_y + 40, c0[2]), "muscle")
    disc_phase = rng.uniform(0, 35)
    paint(lambda x, y, z: np.sqrt((x / 21) ** 2 + ((y - spine_y) / 18) ** 2) + 0 * z,
          (-22, spine_y - 20, z_lo), (22, spine_y + 20, z_hi), "bone_cortical")
    paint(lambda x, y, z: np.sqrt((x / 18.5) ** 2 + ((y - spine_y) / 15.5) ** 2) + 0 * z,
          (-22, spine_y - 20, z_lo), (22, spine_y + 20, z_hi), "bone_trabecular")
    paint(lambda x, y, z: np.sqrt((x / 21) ** 2 + ((y - spine_y) / 18) ** 2) + (np.abs(((z - disc_phase) % 33) - 16.5) > 3.5) * 9,
          (-22, spine_y - 20, z_lo), (22, spine_y + 20, z_hi), "disc")
    paint(lambda x, y, z: np.sqrt((x / 26) ** 2 + ((y - spine_y + 32) / 11) ** 2) + 0 * z,
          (-28, spine_y - 45, z_lo), (28, spine_y - 20, z_hi), "bone_trabecular")
    paint(lambda x, y, z: np.sqrt((x / 8) ** 2 + ((y - spine_y + 27) / 7) ** 2) + 0 * z,
          (-10, spine_y - 36, z_lo), (10, spine_y - 18, z_hi), "csf")

    # ribs: bands in the body wall, above the kidneys' hila, sloping down towards the front
    rib_top = shapes[L.LIVER].c[2] + shapes[L.LIVER].r[2]
    rib_phase = rng.uniform(0, 26)

    def ribs(x, y, z):
        r = body_r(x, y, z, fat_sc * 0.6)
        zz = (z + 0.35 * (y + b) - rib_phase) % 26
        band = (np.abs(zz - 13) < 4.5) & (r > 0.86) & (r < 0.95) & (y < 0.55 * b)
        return np.where(band, 0.0, 2.0)

    paint(ribs, (-a, -b, c0[2] - 40), (a, b, rib_top + 40), "bone_cortical")

    # great vessels
    paint(lambda x, y, z: np.sqrt(((x + 14) / 11) ** 2 + ((y - spine_y - 26) / 11) ** 2) + 0 * z,
          (-30, spine_y, z_lo), (2, spine_y + 45, z_hi), "aorta")
    paint(lambda x, y, z: np.sqrt(((x - 22) / 13) ** 2 + ((y - spine_y - 30) / 9) ** 2) + 0 * z,
          (5, spine_y + 10, z_lo), (40, spine_y + 45, z_hi), "ivc")

    # bowel loops (fluid, gas or oral contrast) in the lower and anterior abdomen, and the colon's flexures
    for _ in range(int(rng.integers(14, 22))):
        p0 = np.array([rng.uniform(-0.6, 0.6) * a, rng.uniform(-0.1, 0.6) * b, rng.uniform(c0[2] - 120, c0[2] + 10)])
        p1 = p0 + rng.normal(0, 30, 3)
        rad = rng.uniform(10, 17)
        lo, hi = np.minimum(p0, p1) - rad - 5, np.maximum(p0, p1) + rad + 5
        paint(lambda x, y, z: _capsule(x, y, z, p0, p1, rad), lo, hi, "bowel_wall")
        content = rng.choice(["bowel_fluid", "gas", "oral_contrast"], p=[0.5, 0.3, 0.2])
        paint(lambda x, y, z: _capsule(x, y, z, p0, p1, rad - 3), lo, hi, str(content))
    for s, organ in ((1, L.KIDNEY_RIGHT), (-1, L.KIDNEY_LEFT)):
        kc = shapes[organ].c
        p0 = np.array([kc[0] + s * 10, kc[1] + 45, kc[2] - 10])
        p1 = p0 + np.array([-s * 20, 15, -50])
        paint(lambda x, y, z: _capsule(x, y, z, p0, p1, 20), p0.clip(max=p1) - 25, p0.clip(min=p1) + 25, "bowel_wall")
        paint(lambda x, y, z: _capsule(x, y, z, p0, p1, 16), p0.clip(max=p1) - 25, p0.clip(min=p1) + 25, "gas")

    # pancreas: a tube from the splenic hilum across the midline, in front of the spine
    sp = shapes[L.SPLEEN].c
    p_tail = np.array([sp[0] + 25, sp[1] + 20, sp[2] - 25])
    p_head = np.array([18 + rng.normal(0, 5), spine_y + 45, c0[2] - 15])
    paint(lambda x, y, z: _capsule(x, y, z, p_tail, p_head, 11), np.minimum(p_tail, p_head) - 15, np.maximum(p_tail, p_head) + 15, "pancreas")

    # stomach: in front of and medial to the spleen, with gas on the non-dependent (anterior) side
    st = _Shape(rng, sp + np.array([38, 50, -5]), np.array([42, 30, 45]) * rng.uniform(0.8, 1.15), rot_deg=15, warp=0.12)
    lo, hi = st.bounds()
    paint(st.value, lo, hi, "bowel_wall")
    paint(st.value, lo, hi, "stomach_fluid", thresh=0.88)
    gas_level = rng.uniform(0.1, 0.6)
    paint(lambda x, y, z: np.where(y - st.c[1] > gas_level * st.r[1], st.value(x, y, z), 2.0), lo, hi, "gas", thresh=0.88)

    # the target organs, with their inner structure; kidneys last so that they win where shapes touch
    liv = shapes[L.LIVER]
    lo, hi = liv.bounds()
    paint(liv.value, lo, hi, "liver", L.LIVER)
    gb = _Shape(rng, liv.c + np.array([-0.25 * liv.r[0], 0.35 * liv.r[1], -0.55 * liv.r[2]]), np.array([14, 14, 28]), warp=0.1)
    paint(gb.value, *gb.bounds(), "gallbladder", L.BACKGROUND)
    if pathology == "liver_lesion":
        les = _Shape(rng, liv.c + np.array([0.3 * liv.r[0], 0, 0.1 * liv.r[2]]) + rng.normal(0, 8, 3), np.full(3, rng.uniform(10, 22)), warp=0.1)
        paint(les.value, *les.bounds(), "liver_lesion", where=lambda x, y, z, sl: lab[sl] == L.LIVER)
    spl = shapes[L.SPLEEN]
    paint(spl.value, *spl.bounds(), "spleen", L.SPLEEN)
    for organ in (L.KIDNEY_RIGHT, L.KIDNEY_LEFT):
        if organ == missing:
            continue
        k = shapes[organ]
        lo, hi = k.bounds()
        hit = paint(k.value, lo, hi, "kidney_cortex", organ)
        paint(k.value, lo, hi, "kidney_medulla", thresh=0.72, where=lambda x, y, z, sl, o=organ: lab[sl] == o)
        paint(k.sinus, lo, hi, "sinus_fat", where=lambda x, y, z, sl, o=organ: lab[sl] == o)
        if pathology == "kidney_cyst" and hit is not None and organ == L.KIDNEY_LEFT:
            cy = _Shape(rng, k.c + np.array([-0.6 * k.r[0], 0, 0.4 * k.r[2]]), np.full(3, rng.uniform(8, 16)), warp=0.05)
            paint(cy.value, *cy.bounds(), "cyst", organ)

    # texture, partial-volume blur and scanner noise
    tissue = (vol > -300) & (vol < 300)
    coarse = rng.normal(0, 1, tuple(max(2, s // 8) for s in grid.shape)).astype(np.float32)
    vol += np.where(tissue, 6.0 * resize(coarse, grid.shape), 0)
    sigma = (0.6, 0.6, 0.4 * 3.0 / spacing[2])
    vol = ndimage.gaussian_filter(vol, sigma, mode="nearest", truncate=3.0)
    vol += rng.normal(0, rng.uniform(*cfg.noise_hu), grid.shape).astype(np.float32)
    vol = np.clip(vol, -1024, 3071)

    affine = np.diag([*spacing, 1.0])
    affine[:3, 3] = origin
    if lps:  # store with i towards the patient's left and j towards posterior, as DICOM/ITK tools write
        vol, lab = vol[::-1, ::-1], lab[::-1, ::-1]
        flip = np.diag([-1.0, -1.0, 1.0, 1.0])
        flip[:3, 3] = [grid.shape[0] - 1, grid.shape[1] - 1, 0]  # index units: i' = n - 1 - i
        affine = affine @ flip
        notes.append("stored_LPS")
    image = np.rint(vol).astype(np.int16) if dtype == np.int16 else vol.astype(np.float32)
    return Case(np.ascontiguousarray(image), np.ascontiguousarray(lab), affine, notes)
