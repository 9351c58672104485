"""The built-in `synthetic` source: abdominal CT phantoms with labels, generated deterministically from a seed.

Anatomy is laid out in patient millimetres (RAS+: x to the patient's right, y anterior, z superior) around the
real organ volumes, offsets and extents of docs/anatomy.md, then sampled onto each case's own grid
(spacing, field of view, storage orientation and dtype vary per case as they do across real scans).

A real abdomen is packed: every organ touches others, and what tells a kidney from a back muscle of the same
density is its context (perirenal fat around it, psoas medial, quadratus lumborum behind, vessels into the
hilum, bowel in front). So `generate_case` runs in five phases that a reader can follow:

1. layout (`_draw_layout`): patient size, organ shapes and places, contrast phase, pathology, field of view;
2. body wall and skeleton (`_paint_body_wall`, `_paint_skeleton`): skin, subcutaneous fat, wall muscles,
   erector spinae, quadratus lumborum, psoas (growing inferiorly), vertebrae with pedicles, transverse and
   spinous processes, continuous curved ribs with costal cartilage;
3. distractors (`_paint_distractors`): small bowel and mesentery filling the free peritoneal space, colon
   with its flexures, duodenum, stomach, pancreas, aorta, IVC, portal vein, adrenals, perirenal fat;
4. organs (`_paint_organs`): liver (hepatic veins, gallbladder, IVC in its bare area), spleen, kidneys
   (cortex, medullary pyramids, a sinus of fat lobules among vessels, pelvis, renal artery and vein into the hilum);
5. scanner (`_scanner`): tissue texture, beam-hardening streaks near bone, partial-volume blur, correlated
   noise, a field of view that may cut the body, storage orientation and dtype.

Phases 2-4 together are `_paint_anatomy`: the painted canvas, which tests of the anatomy read before the scanner.

Organs are implicit shapes (deformed ellipsoids, a tapered liver, bean-shaped kidneys); everything else is a
handful of tubes, ellipses and one Voronoi packing, so that a case takes about a second on one core.
Per-case tissue values are drawn around the phase's textbook Hounsfield units with a spread of
`tissue_jitter_hu` (domain randomisation in the spirit of SynthSeg, Billot et al. 2023, kept near real CT
numbers): the model must use shape and context, not exact HU.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage
from scipy.spatial import cKDTree

from . import labels as L
from .preprocess import resize

# Real reference figures (docs/anatomy.md): volume mL (mean, sd, min, max); centroid offset from the mean of the
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
MIDLINE_TO_C0_MM = -(OFFSET_MM[L.KIDNEY_RIGHT][0][0] + OFFSET_MM[L.KIDNEY_LEFT][0][0]) / 2  # see _draw_layout
EXTENT_MM = {
    L.LIVER: (203, 166, 155),
    L.SPLEEN: (91, 92, 92),
    L.KIDNEY_LEFT: (68, 57, 104),
    L.KIDNEY_RIGHT: (67, 60, 101),
}

# Shape constants, chosen so that the phantoms' bounding boxes match EXTENT_MM (tests/test_synthetic.py checks them
# within 20%). A liver is no ellipsoid: it fills only about a quarter of its bounding box (1254 mL in 203 x 166 x 155
# mm), tall and thick on the right, a thin left lobe (LIVER_TAPER: ranges of the share of height and depth left at the left
# tip, and of how fast it grows to the right), its visceral underside hollowed where the right kidney, hepatic flexure and
# duodenum press (LIVER_HOLLOW: centre and radii in units of the radii). The spleen is a crescent lying obliquely
# along the posterolateral wall, its anterior pole lateral (SPLEEN_TURN, degrees about the vertical axis), which is
# why its box is as wide (91 mm) as it is deep (92 mm). Without these the livers were 48 mm too shallow and 30 mm
# too short, and the spleens 41 mm too narrow.
LIVER_R = (1.0, 1.45, 1.5)  # radii before the volume fit, in units of EXTENT_MM / 2
LIVER_TAPER = ((0.08, 0.25), (1.1, 2.0))  # ranges: a small or a large left lobe are both common
LIVER_HOLLOW = (0.2, -0.55, -0.75, 0.7, 0.7, 0.7)
SPLEEN_R = (0.65, 1.2, 1.0)
SPLEEN_TURN = (40.0, 55.0)
# Organs differ in shape as well as in size (the liver's left lobe, a long thin or a short round spleen, a slender or
# a plump kidney): each radius is multiplied by a factor drawn from 1 +- this, before the volume fit restores the
# drawn volume, so the proportions vary while the mean box stays at EXTENT_MM.
SHAPE_SPREAD = {L.LIVER: 0.15, L.SPLEEN: 0.2, L.KIDNEY_RIGHT: 0.1, L.KIDNEY_LEFT: 0.1}

PHASES = ("non_contrast", "arterial", "portal_venous")

# Hounsfield units per tissue: (non-contrast, arterial, portal-venous). Textbook values: unenhanced liver
# 50-65, spleen 40-50, kidney ~30 (close to muscle), blood 35-45; arterial (corticomedullary) phase: cortex
# 150-200 with dark medulla, aorta 250-350, spleen bright and mottled; portal-venous (nephrographic) phase:
# liver 100-130, spleen 110-130, renal parenchyma 130-180 (Yuh and Cohan, AJR 1999; Bae, Radiology 2010;
# docs/anatomy.md).
TISSUE_HU: dict[str, tuple[float, float, float]] = {
    "fat": (-100, -100, -100),
    "skin": (30, 40, 40),
    "muscle": (50, 55, 60),
    "bowel_wall": (38, 80, 90),
    "bowel_fluid": (12, 12, 12),
    "stool": (-40, -40, -40),
    "oral_contrast": (280, 280, 280),
    "stomach_fluid": (12, 12, 12),
    "pancreas": (40, 105, 95),
    "adrenal": (30, 60, 65),
    "aorta": (40, 300, 160),
    "ivc": (38, 75, 130),
    "portal_vein": (40, 95, 170),
    "renal_vein": (38, 110, 150),
    "liver": (57, 75, 112),
    "gallbladder": (10, 10, 10),
    "spleen": (46, 115, 118),
    "kidney_cortex": (32, 175, 165),
    "kidney_medulla": (28, 65, 135),
    "renal_pelvis": (8, 8, 10),
    "sinus_fat": (-70, -70, -70),
    "bone_trabecular": (220, 220, 220),
    "bone_cortical": (650, 650, 650),
    "cartilage": (120, 120, 120),
    "disc": (85, 85, 85),
    "csf": (10, 10, 10),
    "table": (200, 200, 200),
    "liver_lesion": (25, 45, 50),
    "cyst": (5, 5, 5),
}

# The kidneys lie obliquely in the coronal plane, the upper pole nearer the midline than the lower (Gray's Anatomy;
# surface anatomy: the upper pole about 3 cm from the median line, the hilum 4-5 cm, 5-6 cm lower, i.e. about 15
# degrees), their long axes along the psoas's lateral edge. Degrees from the vertical, drawn per kidney.
KIDNEY_LEAN_DEG = (10.0, 20.0)

PATHOLOGIES = ("liver_lesion", "kidney_cyst", "enlarged_spleen", "missing_kidney")

# Contrast timing and dose vary from scan to scan, so enhancement is a continuum, not three fixed palettes: a
# "portal-venous" scan taken at 60 s still shows the late corticomedullary phase (cortex brighter than medulla), one
# at 90-100 s is nephrographic (homogeneous kidneys), and every tissue's enhancement scales with the iodine dose and
# the cardiac output (Yuh and Cohan, AJR 1999; Bae, Radiology 2010). An enhanced case draws a time t between its
# phase's anchors (0 = TISSUE_HU's arterial column, 1 = its portal-venous column; above 1, later) and a dose factor
# on each tissue's enhancement over its unenhanced value.
ENHANCEMENT_TIME = {"arterial": (0.0, 0.4), "portal_venous": (0.55, 1.25)}
ENHANCEMENT_DOSE = (0.75, 1.25)


def enhanced_hu(values: tuple[float, float, float], t: float, dose: float) -> float:
    """A tissue's HU at enhancement time t and dose factor `dose` (see ENHANCEMENT_TIME), from its three anchors."""
    plain, arterial, portal = values
    return plain + dose * (arterial + t * (portal - arterial) - plain)


# `resolution: scanner` (issue #16): what a clinical abdominal CT reconstruction looks like, for measuring every step
# at full size: 512 x 512 pixels of 0.7-0.9 mm, 200-400 slices of 1-3 mm, at most 600 mm long (chest to pelvis).
SCANNER_MATRIX = 512
SCANNER_PIXEL_MM = (0.7, 0.9)
SCANNER_SLICE_MM = (1.0, 3.0)
SCANNER_SLICES = (200, 400)
SCANNER_MAX_LENGTH_MM = 600.0
RESOLUTIONS = ("coarse", "scanner")


@dataclass(frozen=True)
class SyntheticConfig:
    """What varies across generated cases; the defaults are coarser than real scans, for speed on CPUs."""

    n_cases: int = 120
    seed: int = 0
    resolution: str = "coarse"  # coarse: the spacings below; scanner: 512 x 512 at 0.7-0.9 mm, 200-400 slices of 1-3 mm
    spacing_inplane: tuple[float, float] = (1.75, 2.5)  # real scans: 0.7-1.0 mm
    slice_thickness: tuple[float, float] = (2.5, 5.0)  # real scans: 1.5-5 mm
    lps_fraction: float = 0.5  # share of cases stored LPS (as ITK/DICOM write them); the rest RAS
    float32_fraction: float = 0.3  # share stored as float32; the rest int16
    phase_weights: tuple[float, float, float] = (0.4, 0.2, 0.4)  # non-contrast, arterial, portal-venous
    fov_cut_fraction: float = 0.15  # share whose field of view cuts the liver dome or the kidneys' lower poles
    slab_fraction: float = 0.3  # share covering only a 60-150 mm slab (a kidney or liver slab, as in many scans)
    inplane_cut_fraction: float = 0.3  # share whose in-plane field of view cuts the body's sides or back
    pathology_fraction: float = 0.2  # share with one of PATHOLOGIES
    tissue_jitter_hu: float = 10.0  # sd of each tissue's per-case HU around its phase value
    noise_hu: tuple[float, float] = (10.0, 25.0)
    tissue_hu: dict[str, tuple[float, float, float]] = field(default_factory=lambda: dict(TISSUE_HU))

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


def _axis_rotation(axis: int, angle: float) -> np.ndarray:
    """The right-handed rotation by `angle` radians about axis 0 (x), 1 (y) or 2 (z)."""
    i, j = (axis + 1) % 3, (axis + 2) % 3
    m = np.eye(3)
    m[i, i] = m[j, j] = np.cos(angle)
    m[i, j], m[j, i] = -np.sin(angle), np.sin(angle)
    return m


def _rotation(rng: np.random.Generator, max_deg: float) -> np.ndarray:
    """A random rotation matrix of at most `max_deg` degrees about each axis."""
    ax, ay, az = np.deg2rad(rng.uniform(-max_deg, max_deg, 3))
    return _axis_rotation(2, az) @ _axis_rotation(1, ay) @ _axis_rotation(0, ax)


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

    def world(self, local) -> np.ndarray:
        """World position of a point given in the shape's unwarped local frame."""
        return self.c + self.R @ np.asarray(local, float)


class _Liver(_Shape):
    """A big right lobe tapering towards the patient's left, its left lobe riding anterior and high; the right
    lobe's posterior-inferior part reaches down towards the right kidney (Riedel-like variation via `droop`)."""

    def __init__(self, rng, centre, radii, **kw):
        super().__init__(rng, centre, radii, **kw)
        self.droop = rng.uniform(0.1, 0.45)  # the right lobe's posterior part lies on the right kidney (hepatorenal recess)
        self.taper = (rng.uniform(*LIVER_TAPER[0]), rng.uniform(*LIVER_TAPER[1]))

    def value(self, x, y, z):
        u = self.local(x, y, z)
        t = np.clip((u[0] / self.r[0] + 1) / 2, 0, 1)  # 0 at the left tip, 1 at the right edge
        g = self.taper[0] + (1 - self.taper[0]) * t ** self.taper[1]
        uy = u[1] - 0.25 * self.r[1] * (1 - t)
        uz = u[2] - 0.15 * self.r[2] * (1 - t) + self.droop * self.r[2] * t ** 2 * np.clip(-u[1] / self.r[1], 0, 1)
        base = np.sqrt((u[0] / self.r[0]) ** 2 + (uy / (self.r[1] * g)) ** 2 + (uz / (self.r[2] * g)) ** 2)
        hx, hy, hz = (u[i] - LIVER_HOLLOW[i] * self.r[i] for i in range(3))
        hollow = np.sqrt((hx / (LIVER_HOLLOW[3] * self.r[0])) ** 2 + (hy / (LIVER_HOLLOW[4] * self.r[1])) ** 2
                         + (hz / (LIVER_HOLLOW[5] * self.r[2])) ** 2)
        return np.maximum(base, 2.0 - hollow)


class _Kidney(_Shape):
    """A bean: an ellipsoid with a notch (the hilum) on the side that faces the spine, turned anteromedially."""

    def __init__(self, rng, centre, radii, medial_sign: float, **kw):
        super().__init__(rng, centre, radii, **kw)
        self.medial = medial_sign  # +1 if the spine lies towards +x of this kidney
        self.lobes = rng.uniform(0, 2 * np.pi, 2)
        self.sinus_size = rng.uniform(0.8, 1.3)  # renal sinus fat grows with age and obesity
        self.hilum_len = rng.uniform(0.3, 0.42)  # half-height of the hilum's mouth, in units of the half-length

    def value(self, x, y, z):
        u = self.local(x, y, z)
        base = np.sqrt((u[0] / self.r[0]) ** 2 + (u[1] / self.r[1]) ** 2 + (u[2] / self.r[2]) ** 2)
        # hilum: a slot on the anteromedial edge that opens into the sinus, so that sections through the
        # kidney's middle third are a C open towards the spine and the front, as in real kidneys (the hilum's
        # lips are about a third of the kidney's length apart; Gray's Anatomy)
        hx = u[0] - self.medial * 0.95 * self.r[0]
        hy = u[1] - 0.3 * self.r[1]
        notch = np.sqrt((hx / (0.6 * self.r[0])) ** 2 + (hy / (0.42 * self.r[1])) ** 2 + (u[2] / (self.hilum_len * self.r[2])) ** 2)
        return np.maximum(base, 2.0 - notch)

    def sinus(self, x, y, z):
        """< 1 inside the renal sinus (fat and vessels at the hilum, within the kidney outline)."""
        u = self.local(x, y, z)
        hx = u[0] - self.medial * 0.3 * self.r[0]
        hy = u[1] - 0.1 * self.r[1]
        r = self.r * self.sinus_size
        return np.sqrt((hx / (0.5 * r[0])) ** 2 + (hy / (0.42 * r[1])) ** 2 + (u[2] / (0.6 * r[2])) ** 2)

    def pyramids(self, x, y, z):
        """< 1 inside the medullary pyramids: a shell between sinus and cortex, broken into lobes."""
        u = self.local(x, y, z)
        ang = np.arctan2(u[2] / self.r[2], u[1] / self.r[1])
        lobe = np.cos(4 * ang + self.lobes[0]) * np.cos(2 * u[0] / self.r[0] + self.lobes[1])
        return self.value(x, y, z) / (0.78 - 0.1 * (lobe < -0.2))

    def hilum(self) -> np.ndarray:
        """World position of the hilum's mouth (where the renal vessels and pelvis leave the kidney)."""
        return self.world([self.medial * 1.0 * self.r[0], 0.25 * self.r[1], 0.0])


class _Spleen(_Shape):
    """A crescent hugging the left posterior body wall: an ellipsoid with its medial face hollowed and notched."""

    def __init__(self, rng, centre, radii, **kw):
        super().__init__(rng, centre, radii, **kw)
        self.notch = (rng.uniform(0, 2 * np.pi), rng.uniform(0.0, 0.12))

    def value(self, x, y, z):
        u = self.local(x, y, z)
        base = np.sqrt((u[0] / self.r[0]) ** 2 + (u[1] / self.r[1]) ** 2 + (u[2] / self.r[2]) ** 2)
        base = base + self.notch[1] * np.maximum(np.sin(5 * u[2] / self.r[2] + self.notch[0]), 0) * (u[1] > 0)
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


def _centre_on(shape: _Shape, target: np.ndarray) -> None:
    """Move a shape so that its centroid, not its frame's origin, lies at `target`: docs/anatomy.md's offsets
    are centroids, and a tapered liver's centroid lies 10-20 mm right of its frame's origin (left uncorrected,
    the liver reached too far right and the body grown round it came out 60-100 mm too wide)."""
    for _ in range(2):
        shape.c = shape.c + (target - _inside_points(shape).mean(0))
        shape._cache = None


def _draw_volume(rng: np.random.Generator, organ: int, lo_q: float = 0.0) -> float:
    mean, sd, vmin, vmax = VOLUME_ML[organ]
    v = rng.normal(mean, sd)
    lo = vmin + lo_q * (vmax - vmin)
    return float(np.clip(v, lo * 1.08, vmax * 0.92))


# ---------------------------------------------------------------------------------------------------------
# Phase 1: layout


@dataclass
class _Layout:
    """Everything a case draws before a voxel is painted: patient, organs, phase, pathology, grid."""

    rng: np.random.Generator
    hu: dict[str, float]
    phase: str
    notes: list[str]
    pathology: str | None
    missing: int | None
    a: float  # body half-width (x)
    b_ant: float  # body half-depth in front of the centre (y > 0)
    b_post: float  # behind it
    fat_sc: float  # subcutaneous fat thickness
    wall: float  # abdominal wall muscle thickness
    spine_y: float  # vertebral body centre (y); x = 0
    c0: np.ndarray  # mean of the four organ centroids
    z_rib12: float  # where the 12th rib leaves the spine
    shapes: dict[int, _Shape]
    grid: _Grid
    z_lo: float
    z_hi: float
    inplane_cut: bool
    lps: bool
    dtype: type
    wobble: np.ndarray
    aorta_x: float
    z_recess: float  # lowest point of the lungs' posterior recesses
    z_dome: float  # top of the diaphragm's dome

    @property
    def canal_y(self) -> float:
        return self.spine_y - 27.0

    def body_r(self, x, y, shrink: float = 0.0):
        """Normalised radius of the body outline shrunk by `shrink` mm (< 1 inside)."""
        return _body_r(x, y, self.a, self.b_ant, self.b_post, self.wobble, shrink)

    def diaphragm_z(self, x, y):
        """Height of the diaphragm: the lung bases lie above it. Low behind (the posterior costophrenic recesses
        reach down to about T12-L1, behind the liver and spleen) and at the sides, high in front."""
        t = np.clip((y - self.spine_y + 10) / (0.8 * self.b_ant), 0, 1)
        return self.z_recess + (self.z_dome - self.z_recess) * t ** 0.6 - 30 * (x / self.a) ** 2 + 10


def _body_r(x, y, a: float, b_ant: float, b_post: float, wobble: np.ndarray, shrink: float = 0.0):
    """Normalised radius of a body outline (< 1 inside): an ellipse in front, a flatter superellipse behind
    (a supine patient's back lies flat on the table), with a gentle wobble."""
    theta = np.arctan2(y, x)
    wob = 1 + 0.03 * np.sin(2 * theta + wobble[0]) + 0.02 * np.sin(3 * theta + wobble[1])
    post = y < 0
    depth = np.where(post, b_post, b_ant) - shrink
    p = np.where(post, 3.2, 2.4)
    return (np.abs(x / (a - shrink)) ** p + np.abs(y / depth) ** p) ** (1 / p) / wob


def _inside_points(shape: _Shape, step: float = 6.0) -> np.ndarray:
    """World points (N, 3) of a coarse grid that fall inside a shape."""
    lo, hi = shape.bounds()
    ax = [np.arange(lo[d], hi[d], step) + step / 2 for d in range(3)]
    inside = shape.value(ax[0][:, None, None], ax[1][None, :, None], ax[2][None, None, :]) < 1
    idx = np.nonzero(inside)
    return np.stack([ax[d][idx[d]] for d in range(3)], 1)


def _draw_appearance(rng: np.random.Generator, cfg: SyntheticConfig) -> tuple[str, dict[str, float]]:
    """The contrast phase and each tissue's HU in it (the case's palette)."""
    w = np.asarray(cfg.phase_weights, float)
    phase_i = int(rng.choice(3, p=w / w.sum()))
    phase = PHASES[phase_i]
    t, dose = 0.0, 0.0  # unenhanced: dose 0 leaves every tissue at its plain value
    if phase in ENHANCEMENT_TIME:
        t, dose = rng.uniform(*ENHANCEMENT_TIME[phase]), rng.uniform(*ENHANCEMENT_DOSE)
    hu = {k: enhanced_hu(v, t, dose) + rng.normal(0, cfg.tissue_jitter_hu) for k, v in cfg.tissue_hu.items()}
    hu["fat"] = cfg.tissue_hu["fat"][phase_i] + rng.normal(0, 8)
    hu["sinus_fat"] = hu["fat"] + 30
    if phase == "non_contrast":  # unenhanced: cortex and medulla alike, both near muscle
        hu["kidney_medulla"] = hu["kidney_cortex"] - abs(rng.normal(3, 3))
    # vertebral trabecular bone ranges from ~100 HU (osteoporotic) to ~300 HU (young) at L1 (Pickhardt et al.,
    # Ann Intern Med 2013): a dim vertebral body in a bright cortical ring must not pass for an enhancing kidney
    hu["bone_trabecular"] = rng.uniform(90, 290)
    hu["bone_cortical"] = rng.uniform(400, 900)
    hu["air"], hu["gas"] = -1000.0, -900.0 + rng.normal(0, 20)
    hu["lung"] = -860.0 + rng.normal(0, 25)
    return phase, hu


def _draw_organs(rng: np.random.Generator, c0: np.ndarray, pathology: str | None) -> dict[int, _Shape]:
    """The four organs' shapes: centres about `c0` at docs/anatomy.md's offsets, published extents and volumes,
    the kidneys tilted and turned as in life."""
    def centre(organ: int) -> np.ndarray:
        off, sd = OFFSET_MM[organ]
        return c0 + np.asarray(off, float) + rng.normal(0, 1, 3) * np.asarray(sd, float)

    shapes: dict[int, _Shape] = {}
    ext = {k: np.asarray(v, float) / 2 for k, v in EXTENT_MM.items()}

    def radii(organ: int, base) -> np.ndarray:
        return ext[organ] * np.asarray(base, float) * (1 + rng.uniform(-1, 1, 3) * SHAPE_SPREAD[organ])

    shapes[L.LIVER] = _Liver(rng, centre(L.LIVER), radii(L.LIVER, LIVER_R), rot_deg=8)
    spleen_lo_q = 0.55 if pathology == "enlarged_spleen" else 0.0
    shapes[L.SPLEEN] = _Spleen(rng, centre(L.SPLEEN), radii(L.SPLEEN, SPLEEN_R), rot_deg=12)
    turn = np.deg2rad(rng.uniform(*SPLEEN_TURN))
    shapes[L.SPLEEN].R = shapes[L.SPLEEN].R @ _axis_rotation(2, turn)
    for organ, medial in ((L.KIDNEY_RIGHT, -1.0), (L.KIDNEY_LEFT, 1.0)):
        k = _Kidney(rng, centre(organ), radii(organ, [0.8, 0.75, 0.95]), medial_sign=medial, rot_deg=6)
        # long axis tilted (upper pole medial and posterior) and the hilum turned anteromedially, as in real
        # kidneys (they lie along the psoas, whose edge runs obliquely)
        tilt = np.deg2rad(rng.uniform(8, 18))
        turn = np.deg2rad(medial * rng.uniform(10, 35))
        lean = np.deg2rad(medial * rng.uniform(*KIDNEY_LEAN_DEG))
        k.R = k.R @ _axis_rotation(1, lean) @ _axis_rotation(0, tilt) @ _axis_rotation(2, turn)
        shapes[organ] = k
    for organ, shape in shapes.items():
        _fit_volume(shape, _draw_volume(rng, organ, spleen_lo_q if organ == L.SPLEEN else 0.0))
        _centre_on(shape, shape.c.copy())
    return shapes


def _widen_body(shapes: dict[int, _Shape], a: float, b_ant: float, b_post: float, wobble: np.ndarray,
                inner: float) -> tuple[float, float]:
    """The body's half-width and front half-depth, grown where a drawn organ would poke through the wall muscle
    (`inner` mm inside the outline); the back stays where the spine put it."""
    pts = np.concatenate([_inside_points(s) for s in shapes.values()])
    for _ in range(4):
        reach = _body_r(pts[:, 0], pts[:, 1], a, b_ant, b_post, wobble, inner)
        if reach.max() <= 0.99:
            break
        grow = float(reach.max()) / 0.98
        a, b_ant = (a - inner) * grow + inner, (b_ant - inner) * grow + inner
    return a, b_ant


def _draw_z_range(rng: np.random.Generator, shapes: dict[int, _Shape], slab: bool, fov_cut: str | None,
                  notes: list[str]) -> tuple[float, float]:
    """The scan's z range: below the kidneys' lower poles to above the liver dome, unless a slab or a cut."""
    zs = [(s.c[2] - 1.1 * s.r.max(), s.c[2] + 1.1 * s.r.max()) for s in shapes.values()]
    z_lo = min(z[0] for z in zs) - rng.uniform(10, 40)
    z_hi = max(z[1] for z in zs) + rng.uniform(5, 30)
    if slab:  # a thin slab anywhere from the kidneys' lower half to the liver's middle
        length = rng.uniform(60, 150)
        mid = rng.uniform(min(shapes[L.KIDNEY_RIGHT].c[2], shapes[L.KIDNEY_LEFT].c[2]) - 25, shapes[L.LIVER].c[2] + 10)
        z_lo, z_hi = mid - length / 2, mid + length / 2
        notes.append("fov_slab")
    elif fov_cut == "superior":
        z_hi = shapes[L.LIVER].c[2] + rng.uniform(0.3, 0.6) * shapes[L.LIVER].r[2]
        notes.append("fov_cut_superior")
    elif fov_cut == "inferior":
        low = min(shapes[L.KIDNEY_RIGHT].c[2], shapes[L.KIDNEY_LEFT].c[2])
        z_lo = low - rng.uniform(0.0, 0.4) * shapes[L.KIDNEY_RIGHT].r[2]
        notes.append("fov_cut_inferior")
    return z_lo, z_hi


def _draw_grid(rng: np.random.Generator, cfg: SyntheticConfig, a: float, b_ant: float, b_post: float,
               z_lo: float, z_hi: float, inplane_cut: bool, notes: list[str]) -> tuple[_Grid, float]:
    """The scan's voxel grid (spacing, in-plane field of view, slices) over the body; returns it and the z of its
    first slice (a scanner-resolution scan reaches down from z_hi, past the drawn range)."""
    sp_xy = rng.uniform(*cfg.spacing_inplane)
    sp_z = rng.uniform(*cfg.slice_thickness)
    depth = b_ant + b_post
    if inplane_cut:  # a reconstruction field narrower than the patient: sides (and maybe back) cut off
        fov = 2 * a * rng.uniform(0.8, 0.97)
        y_mid = (b_ant - b_post) / 2 + rng.uniform(-0.1, 0.1) * depth
        notes.append("fov_cut_inplane")
    else:
        fov = max(2 * a, depth) + rng.uniform(40, 90)
        y_mid = (b_ant - b_post) / 2 - rng.uniform(0, 20)
    n_xy = int(np.ceil(fov / sp_xy))  # odd and even sizes both occur
    n_z = int(np.ceil((z_hi - z_lo) / sp_z))
    if cfg.resolution == "scanner":  # a clinical reconstruction: a 512 matrix, 200-400 thin slices down to the pelvis
        sp_xy, n_xy = rng.uniform(*SCANNER_PIXEL_MM), SCANNER_MATRIX
        sp_z = rng.uniform(*SCANNER_SLICE_MM)
        n_z = int(min(rng.integers(SCANNER_SLICES[0], SCANNER_SLICES[1] + 1), SCANNER_MAX_LENGTH_MM / sp_z))
        z_lo = z_hi - n_z * sp_z
    spacing = np.array([sp_xy, sp_xy, sp_z])
    origin = np.array([-(n_xy - 1) / 2 * sp_xy + rng.uniform(-10, 10), y_mid - (n_xy - 1) / 2 * sp_xy, z_lo])
    return _Grid(origin, spacing, (n_xy, n_xy, n_z)), z_lo


def _draw_layout(index: int, cfg: SyntheticConfig) -> _Layout:
    """Phase 1: draw the patient, the organs' shapes and places, the phase, pathology and the scan's grid.

    The draws happen in a fixed order from one generator seeded by (cfg.seed, index): a case is the same on
    every machine, and a change to one helper's draws moves every draw after it."""
    rng = np.random.default_rng([cfg.seed, index])
    phase, hu = _draw_appearance(rng, cfg)
    notes: list[str] = [phase]
    pathology = PATHOLOGIES[rng.integers(len(PATHOLOGIES))] if rng.random() < cfg.pathology_fraction else None
    fov_cut = ("superior", "inferior")[rng.integers(2)] if rng.random() < cfg.fov_cut_fraction else None
    slab = rng.random() < cfg.slab_fraction
    inplane_cut = rng.random() < cfg.inplane_cut_fraction
    lps = rng.random() < cfg.lps_fraction
    dtype = np.float32 if rng.random() < cfg.float32_fraction else np.int16

    # patient: body half-width a (x), front half-depth b_ant (y); organ centroid mean c0. The kidneys lie about
    # equally far either side of the vertebral column (Gray's Anatomy), so the spine (x = 0) is midway between their
    # mean places: OFFSET_MM is measured from c0, which lies at x = MIDLINE_TO_C0_MM (6.5 mm to the patient's left)
    a = rng.uniform(145, 190)
    b_ant = a * rng.uniform(0.62, 0.78)
    c0 = np.array([MIDLINE_TO_C0_MM + rng.normal(0, 4), -0.2 * b_ant + rng.normal(0, 4), 0.0])
    shapes = _draw_organs(rng, c0, pathology)
    missing = None
    if pathology == "missing_kidney":
        missing = (L.KIDNEY_RIGHT, L.KIDNEY_LEFT)[rng.integers(2)]
        notes.append(f"missing_{L.ORGANS[missing]}")
    elif pathology:
        notes.append(pathology)

    # the spine sits level with the kidneys' centres (they lie in the paravertebral gutters); behind it the
    # posterior elements, the erector spinae and the subcutaneous fat set the depth of the back
    kid_y = (shapes[L.KIDNEY_RIGHT].c[1] + shapes[L.KIDNEY_LEFT].c[1]) / 2
    spine_y = kid_y + rng.uniform(-4, 8)
    fat_sc, wall = rng.uniform(8, 35), rng.uniform(9, 16)
    b_post = -(spine_y - 78 - rng.uniform(0, 10) - fat_sc)
    z_rib12 = shapes[L.KIDNEY_LEFT].c[2] + rng.uniform(5, 30)
    wobble = rng.uniform(0, 2 * np.pi, 2)
    # the organs lie inside the wall muscle: they may press into it, not through it
    a, b_ant = _widen_body(shapes, a, b_ant, b_post, wobble, inner=fat_sc + 0.5 * wall)
    z_lo, z_hi = _draw_z_range(rng, shapes, slab, fov_cut, notes)
    grid, z_lo = _draw_grid(rng, cfg, a, b_ant, b_post, z_lo, z_hi, inplane_cut, notes)
    liv = shapes[L.LIVER]
    return _Layout(rng, hu, phase, notes, pathology, missing, a, b_ant, b_post, fat_sc, wall, spine_y, c0,
                   z_rib12, shapes, grid, z_lo, z_hi, inplane_cut, lps, dtype, wobble, -rng.uniform(8, 18),
                   z_rib12 + rng.uniform(0, 25), liv.c[2] + 0.75 * liv.r[2])


class _Canvas:
    """The image (HU) and label volumes being painted, with the one painting rule.

    `paint` fills the voxels where `value_fn < thresh` (inside a world box) with a tissue. Background tissue
    (label None) never overwrites an organ; an organ label overwrites anything; `within=organ` paints only
    inside that organ (its inner structure) and keeps the label; `label=0` clears organ voxels (a rib or a
    vessel that must win over an organ it touches).
    """

    def __init__(self, lay: _Layout):
        self.lay, self.grid, self.hu = lay, lay.grid, lay.hu
        self.vol = np.full(lay.grid.shape, self.hu["air"], np.float32)
        self.lab = np.zeros(lay.grid.shape, np.uint8)
        self.perirenal = np.zeros(lay.grid.shape, bool)  # inside Gerota's fascia round a kidney that is present
        self.back_muscle = np.zeros(lay.grid.shape, bool)  # erector spinae, quadratus lumborum and psoas, as painted
        self.lo = lay.grid.origin - 1
        self.hi = lay.grid.origin + lay.grid.spacing * (np.array(lay.grid.shape) - 1) + 1

    def box(self, lo, hi) -> tuple[slice, ...] | None:
        """Index slices of the world box [lo, hi] clipped to the canvas; None when it misses it."""
        return self.grid.box(np.maximum(np.asarray(lo, float), self.lo), np.minimum(np.asarray(hi, float), self.hi))

    def paint(self, value_fn, lo, hi, tissue: str | float, label: int | None = None, within: int | None = None,
              thresh: float = 1.0, where=None) -> tuple[tuple[slice, ...], np.ndarray] | None:
        sl = self.box(lo, hi)
        if sl is None:
            return None
        x, y, z = self.grid.coords(sl)
        inside = np.broadcast_to(value_fn(x, y, z) < thresh, tuple(s.stop - s.start for s in sl))
        if where is not None:
            inside = inside & where(x, y, z, sl)
        if within is not None:
            inside = inside & (self.lab[sl] == within)
        elif label is None:
            inside = inside & (self.lab[sl] == L.BACKGROUND)
        self.vol[sl][inside] = self.hu[tissue] if isinstance(tissue, str) else tissue
        if label is not None:
            self.lab[sl][inside] = label
        return sl, inside

    def outside_perirenal_and_back(self, x, y, z, sl: tuple[slice, ...]) -> np.ndarray:
        """A `where` for an organ kept outside Gerota's fascia (it meets a kidney across the fascia and the perirenal
        fat, not voxel to voxel) and out of the back muscles (it lies in front of the posterior abdominal wall)."""
        return ~(self.perirenal[sl] | self.back_muscle[sl])

    def back_muscle_paint(self, value_fn, lo, hi) -> None:
        """Paint a muscle of the posterior abdominal wall and remember where it is (`back_muscle`)."""
        res = self.paint(value_fn, lo, hi, "muscle")
        if res is not None:
            self.back_muscle[res[0]] |= res[1]

    def tube(self, points, radius: float, tissue: str, label: int | None = None, within: int | None = None,
             wall: tuple[str, float] | None = None) -> list[tuple[tuple[slice, ...], np.ndarray]]:
        """A tube along a polyline (each segment a capsule), optionally with a wall of (tissue, thickness);
        returns what `paint` returned for each segment's lumen."""
        pts = [np.asarray(p, float) for p in points]
        lumens = []
        for p0, p1 in zip(pts[:-1], pts[1:]):
            lo, hi = np.minimum(p0, p1) - radius - 2, np.maximum(p0, p1) + radius + 2
            if wall is not None:
                self.paint(lambda x, y, z: _capsule(x, y, z, p0, p1, radius), lo, hi, wall[0], label, within)
            r_in = radius - (wall[1] if wall is not None else 0)
            res = self.paint(lambda x, y, z: _capsule(x, y, z, p0, p1, r_in), lo, hi, tissue, label, within)
            if res is not None:
                lumens.append(res)
        return lumens


# ---------------------------------------------------------------------------------------------------------
# Phase 2: body wall and skeleton


def _paint_body_wall(cv: _Canvas, lay: _Layout) -> None:
    """Table, skin, subcutaneous fat, the wall's muscle ring, and the big posterior muscles: erector spinae
    beside the spinous processes, quadratus lumborum behind the kidneys, psoas beside the vertebral bodies,
    growing from T12 down (Gray's Anatomy, 42nd ed., posterior abdominal wall)."""
    rng, a, lo, hi = lay.rng, lay.a, cv.lo, cv.hi
    y_table = -lay.b_post - rng.uniform(2, 8)
    cv.paint(lambda x, y, z: np.abs(y - y_table + 6 - 0.0006 * x ** 2) / 4 + 0 * z, (-a - 30, y_table - 30, lo[2]), (a + 30, y_table, hi[2]), "table")
    cv.paint(lambda x, y, z: lay.body_r(x, y) + 0 * z, lo, hi, "skin")
    cv.paint(lambda x, y, z: lay.body_r(x, y, 2.5) + 0 * z, lo, hi, "fat")
    cv.paint(lambda x, y, z: lay.body_r(x, y, lay.fat_sc) + 0 * z, lo, hi, "muscle")
    cv.paint(lambda x, y, z: lay.body_r(x, y, lay.fat_sc + lay.wall) + 0 * z, lo, hi, "fat")
    # lung bases above the diaphragm (a muscle sheet a few mm thick), inside the wall
    dia = rng.uniform(4, 7)
    cavity = lambda x, y, z: lay.body_r(x, y, lay.fat_sc + lay.wall)  # noqa: E731
    cv.paint(lambda x, y, z: np.where(z > lay.diaphragm_z(x, y) - dia, cavity(x, y, z), 9), lo, hi, "muscle")
    cv.paint(lambda x, y, z: np.where(z > lay.diaphragm_z(x, y), cavity(x, y, z), 9), lo, hi, "lung")

    sy, cy = lay.spine_y, lay.canal_y
    es_r = (rng.uniform(24, 32), rng.uniform(20, 28))
    ql_in = rng.uniform(8, 16)
    psoas_top = lay.z_rib12 - rng.uniform(0, 15)
    for s in (-1, 1):
        # erector spinae (with multifidus): a big oval each side of the spinous processes, under the fat
        ex, ey = s * (es_r[0] + 6), cy - es_r[1] + 6
        cv.back_muscle_paint(lambda x, y, z, ex=ex, ey=ey: np.maximum(
            np.sqrt(((x - ex) / es_r[0]) ** 2 + ((y - ey) / es_r[1]) ** 2), lay.body_r(x, y, lay.fat_sc)) + 0 * z,
            (ex - 40, ey - 40, lo[2]), (ex + 40, ey + 40, hi[2]))

        # quadratus lumborum: from the 12th rib down, behind the medial half of the kidney (its fossa)
        k = lay.shapes[L.KIDNEY_RIGHT if s == 1 else L.KIDNEY_LEFT]
        qx, qy = abs(k.c[0]) - ql_in, k.c[1] - 1.3 * k.r[1] - 6

        def ql(x, y, z, s=s, qx=qx, qy=qy):
            dz = np.clip(lay.z_rib12 - z, 0, None)
            rx, ry = 16 + np.minimum(0.1 * dz, 10), 10 + np.minimum(0.06 * dz, 6)
            return np.sqrt(((x - s * (qx + 0.08 * dz)) / rx) ** 2 + ((y - qy) / ry) ** 2) + (z > lay.z_rib12 + 10) * 9

        cv.back_muscle_paint(ql, (s * qx - 50, qy - 20, lo[2]), (s * qx + 50, qy + 20, lay.z_rib12 + 12))

        # psoas: starts thin at T12 beside the vertebral body and thickens and moves forward as it descends
        def psoas(x, y, z, s=s):
            dz = np.clip(psoas_top - z, 0, None)
            r = np.minimum(5 + 0.2 * dz, 24)
            return np.sqrt(((x - s * (21 + 0.9 * r)) / r) ** 2 + ((y - (sy + 3 + 0.08 * dz)) / (0.85 * r)) ** 2) + (z > psoas_top) * 9

        cv.back_muscle_paint(psoas, (s * 45 - 50, sy - 30, lo[2]), (s * 45 + 50, sy + 40, psoas_top + 1))


def _paint_skeleton(cv: _Canvas, lay: _Layout) -> None:
    """Vertebrae (body with cortical rim, discs, pedicles and arch round the canal, transverse and spinous
    processes) and ribs 12 to 5: continuous tubes that leave the spine, curve round inside the wall and
    descend anteriorly, the lower ones floating, the upper ones ending in costal cartilage. Bone wins over
    organs (label 0), since ribs lie outside the liver and spleen."""
    rng, lo, hi = lay.rng, cv.lo, cv.hi
    sy, cy = lay.spine_y, lay.canal_y
    period = rng.uniform(30, 38)  # vertebral body + disc height, lumbar (Gray's)
    disc = rng.uniform(7, 10)
    phase0 = lay.z_rib12 - rng.uniform(0.3, 0.7) * period  # the T12 body level with its rib

    def level(z):
        return np.mod(z - phase0, period)  # 0 .. disc: disc; disc .. period: vertebral body

    body_x, body_y = rng.uniform(20, 24), rng.uniform(15, 18)
    vb = lambda x, y, z: np.sqrt((x / body_x) ** 2 + ((y - sy) / body_y) ** 2) + 0 * z  # noqa: E731
    box_lo, box_hi = (-body_x - 2, sy - body_y - 2, lo[2]), (body_x + 2, sy + body_y + 2, hi[2])
    cv.paint(vb, box_lo, box_hi, "bone_cortical", label=L.BACKGROUND)
    cv.paint(lambda x, y, z: vb(x, y, z) * 1.13, box_lo, box_hi, "bone_trabecular", label=L.BACKGROUND)
    cv.paint(lambda x, y, z: vb(x, y, z) + (level(z) > disc) * 9, box_lo, box_hi, "disc", label=L.BACKGROUND)

    # posterior elements exist over the upper two thirds of each vertebra's height
    def arch_z(z):
        t = (level(z) - disc) / (period - disc)
        return (t > 0.25) & (t < 0.95)

    tp_len = rng.uniform(22, 32)
    def post(x, y, z):
        arch = np.sqrt((x / 15) ** 2 + ((y - cy) / 13) ** 2)  # pedicles and laminae round the canal
        spinous = np.maximum(np.abs(x) / 3.0, np.abs(y - cy + 26) / 14)  # backwards
        transverse = np.maximum(np.abs(np.abs(x) - 12 - tp_len / 2) / (tp_len / 2), np.abs(y - cy - 4) / 3.5)
        transverse = transverse + (z > lay.z_rib12 + 5) * 9  # thoracic levels carry ribs instead
        return np.where(arch_z(z), np.minimum(np.minimum(arch, spinous), transverse), 9.0)

    cv.paint(post, (-12 - tp_len - 2, cy - 48, lo[2]), (12 + tp_len + 2, sy, hi[2]), "bone_cortical", label=L.BACKGROUND)
    cv.paint(lambda x, y, z: np.sqrt((x / 9) ** 2 + ((y - cy) / 8) ** 2) + 0 * z, (-10, cy - 9, lo[2]), (10, cy + 9, hi[2]),
             "csf", label=L.BACKGROUND)

    # ribs: centre line on an ellipse inside the wall muscle; angle phi from the spine (0) to the front (pi)
    ax_r = lay.a - lay.fat_sc - lay.wall * 0.6
    ay_front = lay.b_ant - lay.fat_sc - lay.wall * 0.6
    # Behind, the ribs lie behind the kidneys, the quadratus lumborum and the diaphragm between (Gray's). The arc is
    # set back from the spinal canal's depth (where it crossed the kidneys) to pass 8 mm behind each kidney's back at
    # the kidney's centre line; it then runs through the quadratus lumborum rather than behind it, a smaller error.
    ay_back = -cy + rng.uniform(4, 14)
    for k in (lay.shapes[L.KIDNEY_RIGHT], lay.shapes[L.KIDNEY_LEFT]):
        back = k.c[1] - 1.1 * np.linalg.norm(k.R[1] * k.r)  # the rotated ellipsoid's back, 10% added for the warp
        ay_back = max(ay_back, (8 - back) / np.sqrt(max(1 - (k.c[0] / ax_r) ** 2, 0.2)))
    ay_back = min(ay_back, lay.b_post - lay.fat_sc - lay.wall)
    drop = rng.uniform(70, 110)
    gap = rng.uniform(24, 30)
    ends = [0.32, 0.48, 0.7, 0.78, 0.85, 0.9, 0.92, 0.94]  # where rib 12, 11, 10, ... stops (phi / pi)
    bony = [1.0, 1.0, 0.72, 0.7, 0.68, 0.66, 0.65, 0.64]  # the rest, to the front, is costal cartilage

    def rib_geometry(x, y, z):
        yy = np.where(y > 0, y / ay_front, y / ay_back)
        rho = np.sqrt((x / ax_r) ** 2 + yy ** 2)
        phi = np.arctan2(np.abs(x) / ax_r, -yy) / np.pi
        radial = np.abs(rho - 1) * ax_r  # mm from the centre line, roughly
        return phi, radial, z + drop * phi ** 1.3

    def rib_value(k: int, cartilage: bool, core: bool):
        r_rad, r_z = (2.5, 3.5) if core else (4.0, 5.5)

        def fn(x, y, z):
            phi, radial, zz = rib_geometry(x, y, z)
            along = (phi > bony[k] * ends[k]) & (phi < ends[k]) if cartilage else (phi > 0.08) & (phi < bony[k] * ends[k])
            return np.sqrt((radial / r_rad) ** 2 + ((zz - lay.z_rib12 - gap * k) / r_z) ** 2) + (~along) * 9
        return fn

    for k in range(len(ends)):
        z_top = lay.z_rib12 + gap * k + 8
        box = ((-ax_r - 10, cy - 10, z_top - drop - 16), (ax_r + 10, ay_front + 10, z_top))
        if box[1][2] < lo[2] or box[0][2] > hi[2]:
            continue
        cv.paint(rib_value(k, False, False), *box, "bone_cortical", label=L.BACKGROUND)
        cv.paint(rib_value(k, False, True), *box, "bone_trabecular", label=L.BACKGROUND)
        if bony[k] < 1:
            cv.paint(rib_value(k, True, False), *box, "cartilage", label=L.BACKGROUND)


# ---------------------------------------------------------------------------------------------------------
# Phase 3: distractors


def _smooth_noise(rng: np.random.Generator, shape: tuple[int, int, int], cell_vox: float) -> np.ndarray:
    """Unit-sd smooth random field on `shape`, correlated over about `cell_vox` voxels."""
    coarse = rng.normal(0, 1, tuple(max(2, int(np.ceil(s / cell_vox)) + 1) for s in shape)).astype(np.float32)
    return resize(coarse, shape)


def _pack_bowel(cv: _Canvas, lay: _Layout) -> None:
    """Small bowel and mesentery filling the free peritoneal space (a real abdomen has no empty fat gaps):
    a Voronoi packing of warped cells, each a loop's cross-section (collapsed, fluid, gas or oral contrast,
    with its wall), separated by mesenteric fat whose thickness varies per patient."""
    rng, g = lay.rng, lay.grid
    inner = lay.fat_sc + lay.wall
    # the peritoneal cavity's back: in front of the spine and kidneys in the middle, sweeping back into the
    # flanks lateral to the kidneys (the paracolic gutters)
    a_in = lay.a - inner
    back = lambda x: lay.spine_y + 18 - 55 * np.clip((np.abs(x) - 55) / (a_in - 55), 0, 1) ** 1.2  # noqa: E731
    sl = g.box(np.array([-lay.a, lay.spine_y - 40, lay.z_lo]), np.array([lay.a, lay.b_ant, lay.z_hi]))
    if sl is None:
        return
    x, y, z = g.coords(sl)
    cavity = (lay.body_r(x, y, inner) < 1) & (cv.lab[sl] == 0) & (y > back(x)) & (z < lay.diaphragm_z(x, y) - 8)
    if not cavity.any():
        return
    # cells are found on a lattice of about 4 mm and repeated onto the grid (the scanner blur hides the steps)
    step = [max(1, int(round(4.0 / sp))) for sp in g.spacing]
    lat = [g.axes[d][sl[d]][:: step[d]] for d in range(3)]
    shape = tuple(len(v) for v in lat)
    pts = np.stack(np.meshgrid(*lat, indexing="ij"), -1).reshape(-1, 3)
    warp = np.stack([_smooth_noise(rng, shape, 30 / (g.spacing[0] * step[0])).ravel() for _ in range(3)], 1)
    size = rng.uniform(22, 32)  # loop diameter-ish, mm
    lo, hi = pts.min(0), pts.max(0)
    n_seeds = int(np.prod(hi - lo) / size ** 3) + 4
    seeds = lo + rng.random((n_seeds, 3)) * (hi - lo)
    d, i = cKDTree(seeds).query(pts + 7.0 * warp, k=2)
    # distance to the bisector between the two nearest seeds: (d2^2 - d1^2) / (2 |s2 - s1|)
    sep = np.linalg.norm(seeds[i[:, 1]] - seeds[i[:, 0]], axis=1)
    border = (d[:, 1] ** 2 - d[:, 0] ** 2) / (2 * np.maximum(sep, 1e-3))
    fat_gap = rng.uniform(1.0, 4.0)
    oral = rng.random() < 0.3
    # a loop's content: collapsed, fluid, gas, mesenteric fat, oral contrast
    p = np.array([0.35, 0.3, 0.12, rng.uniform(0.05, 0.3), 0.25 if oral else 0.0])
    content = rng.choice(5, n_seeds, p=p / p.sum())
    values = np.array([cv.hu["bowel_wall"] - 8, cv.hu["bowel_fluid"], cv.hu["gas"], cv.hu["fat"], cv.hu["oral_contrast"]])
    hu = values[content[i[:, 0]]]
    hu = np.where((border < fat_gap + 3.0) & (content[i[:, 0]] != 3), cv.hu["bowel_wall"], hu)
    hu = np.where(border < fat_gap, cv.hu["fat"], hu).astype(np.float32).reshape(shape)
    for d in range(3):
        hu = np.repeat(hu, step[d], axis=d)
    hu = hu[: cavity.shape[0], : cavity.shape[1], : cavity.shape[2]]
    vol = cv.vol[sl]
    vol[cavity] = hu[cavity]
    cv.vol[sl] = vol


def _paint_distractors(cv: _Canvas, lay: _Layout) -> None:
    """Everything that is not a target but sits against one: bowel packing, perirenal fat with Gerota's
    fascia, colon (ascending and descending in front of and lateral to the kidneys, flexures under the liver
    and spleen, transverse colon sagging in front), duodenum round the pancreatic head, pancreas, stomach,
    adrenals above the kidneys, aorta, IVC and portal vein."""
    rng, sh, sy = lay.rng, lay.shapes, lay.spine_y
    c0 = lay.c0
    _pack_bowel(cv, lay)

    # perirenal fat inside Gerota's fascia, wrapping each kidney (also where one is missing: its fossa); the canvas
    # keeps the space it fills (`cv.perirenal`) so that the spleen stays out of it
    # (`_paint_outside_perirenal_and_back`).
    # It is laid over the back muscles too: a kidney rests on psoas and quadratus lumborum through its posterior
    # perirenal fat and the renal fascia (Gray's Anatomy), never muscle to kidney, which the muscles drawn first
    # gave wherever a drawn kidney reached them (docs/benchmarks.md, seventeenth session: FAT)
    gerota = rng.uniform(1.08, 1.5)  # thin patients have little perirenal fat: the kidney then touches the liver
    for organ in (L.KIDNEY_RIGHT, L.KIDNEY_LEFT):
        k = sh[organ]
        lo, hi = k.bounds(pad=1.9)
        space = cv.paint(k.value, lo, hi, cv.hu["fat"] + 70, thresh=gerota + 0.04)
        cv.paint(k.value, lo, hi, "fat", thresh=gerota)
        if space is not None and organ != lay.missing:  # after a nephrectomy the neighbours fill the empty fossa
            cv.perirenal[space[0]] |= space[1]

    # colon: stool mottled with gas, a wall round it
    stool = np.where(_smooth_noise(rng, lay.grid.shape, 4 / lay.grid.spacing[0]) > 0.6, cv.hu["gas"], cv.hu["stool"])
    kr, kl, liv, spl = sh[L.KIDNEY_RIGHT], sh[L.KIDNEY_LEFT], sh[L.LIVER], sh[L.SPLEEN]
    rad = rng.uniform(16, 24)
    hep = np.array([kr.c[0] + 5, kr.c[1] + kr.r[1] + rad, kr.c[2] + 20])
    spf = np.array([kl.c[0] - 15, kl.c[1] + kl.r[1] + rad * 0.7, spl.c[2] - 0.3 * spl.r[2]])
    asc = [np.array([kr.c[0] + 20, kr.c[1] + kr.r[1] + rad - 5, lay.z_lo - 40]), hep]
    desc = [spf, np.array([kl.c[0] - 25, kl.c[1] + kl.r[1] + rad - 8, lay.z_lo - 40])]
    sag = rng.uniform(20, 70)
    trans = [hep, np.array([20, lay.b_ant - lay.fat_sc - lay.wall - rad - 10, c0[2] - sag]),
             np.array([-40, lay.b_ant - lay.fat_sc - lay.wall - rad - 15, c0[2] - sag + 15]), spf]
    for path in (asc, desc, trans):
        pts = [np.asarray(p, float) for p in path]
        for p0, p1 in zip(pts[:-1], pts[1:]):
            lo, hi = np.minimum(p0, p1) - rad - 4, np.maximum(p0, p1) + rad + 4
            cv.paint(lambda x, y, z: _capsule(x, y, z, p0, p1, rad), lo, hi, "bowel_wall", label=L.BACKGROUND)
            res = cv.paint(lambda x, y, z: _capsule(x, y, z, p0, p1, rad - 3), lo, hi, "stool")
            if res is not None:
                s, inside = res
                cv.vol[s][inside] = stool[s][inside]

    # duodenum: a C round the pancreatic head, in front of the right kidney's hilum and the IVC
    rd = rng.uniform(10, 14)
    duo = [np.array([28, c0[1] + 55, c0[2] - 5]), np.array([kr.c[0] - 25, kr.c[1] + 35, c0[2] - 12]),
           np.array([kr.c[0] - 25, kr.c[1] + 35, c0[2] - 60]), np.array([-10, sy + 40, c0[2] - 68]),
           np.array([-30, sy + 42, c0[2] - 45])]
    cv.tube(duo, rd, str(rng.choice(["bowel_fluid", "gas", "bowel_wall"], p=[0.5, 0.2, 0.3])), L.BACKGROUND, wall=("bowel_wall", 3.0))

    # pancreas: a tube from the splenic hilum across the midline in front of the spine, head in the C
    p_tail = np.array([spl.c[0] + 25, spl.c[1] + 20, spl.c[2] - 25])
    p_body = np.array([-5, sy + 50, c0[2] - 5])
    p_head = np.array([kr.c[0] - 45, sy + 42, c0[2] - 30])
    cv.tube([p_tail, p_body, p_head], rng.uniform(9, 13), "pancreas", L.BACKGROUND)

    # stomach: in front of and medial to the spleen, gas on its anterior (non-dependent) side
    st = _Shape(rng, spl.c + np.array([38, 50, -5]), np.array([42, 30, 45]) * rng.uniform(0.8, 1.15), rot_deg=15, warp=0.12)
    lo, hi = st.bounds()
    cv.paint(st.value, lo, hi, "bowel_wall", label=L.BACKGROUND)
    cv.paint(st.value, lo, hi, "stomach_fluid", thresh=0.88)
    gas_level = rng.uniform(0.1, 0.6)
    cv.paint(lambda x, y, z: np.where(y - st.c[1] > gas_level * st.r[1], st.value(x, y, z), 2.0), lo, hi, "gas", thresh=0.88)

    # adrenals: thin inverted Vs above and medial to each kidney's upper pole
    for organ, s in ((L.KIDNEY_RIGHT, 1), (L.KIDNEY_LEFT, -1)):
        k = sh[organ]
        top = k.world([0, 0, k.r[2]])
        apex = np.array([s * 30, top[1] + 12, top[2] + 25])
        for foot in (top + np.array([-s * 8, 8, 0]), top + np.array([-s * 2, -6, -5])):
            cv.tube([apex, foot], 3.0, "adrenal")

    # great vessels: aorta in front of the spine (left of midline), IVC to the right, portal vein to the liver
    ax, ao_y = lay.aorta_x, sy + 30
    cv.paint(lambda x, y, z: np.sqrt(((x - ax) / 11) ** 2 + ((y - ao_y) / 11) ** 2) + 0 * z,
             (ax - 12, ao_y - 12, cv.lo[2]), (ax + 12, ao_y + 12, cv.hi[2]), "aorta", label=L.BACKGROUND)
    cv.tube([np.array([5, sy + 48, c0[2] - 25]), liv.c + np.array([-0.25 * liv.r[0], -0.1 * liv.r[1], -0.3 * liv.r[2]])],
            rng.uniform(6, 8), "portal_vein")


# ---------------------------------------------------------------------------------------------------------
# Phase 4: organs

# The renal sinus is not a pool of fat: its fat wraps the calyces and the branches of the renal artery and vein.
# Measured as a compartment (Zhang et al., Front Endocrinol 2023, 126 adults, MRI fat fraction maps), it holds
# 21-32 mL per kidney (about a sixth of the kidney; the phantom's sinus ellipsoid is 7-28% of the kidney's, mean 15%)
# of which only 28-31% (sd 6-7) is fat. So each kidney draws a fat share of its sinus outside the pelvis in this
# range (12-37% of the whole sinus, the pelvis included) and its sinus is fat lobules between soft-tissue strands,
# not the uniform dark ring round the pelvis that every phantom kidney had. Simplifications: the strands take the
# renal vein's HU in every phase (the calyces' urine does not enhance so), and the lobules are correlated over the
# same number of voxels on every axis, so they are about 5 mm across in plane and 1-3 times that through the slices.
SINUS_FAT_FRACTION = (0.15, 0.45)


def _paint_sinus(cv: _Canvas, k: _Kidney, organ: int, lo: np.ndarray, hi: np.ndarray) -> None:
    """The kidney's renal sinus, inside the kidney's box `lo`-`hi`: fat lobules (`sinus_fat`), about 5 mm across in
    plane, on a drawn share of it, among vessels and calyces at the renal vein's HU."""
    res = cv.paint(k.sinus, lo, hi, "sinus_fat", within=organ)
    if res is None or not res[1].any():
        return
    sl, inside = res
    fat_fraction = cv.lay.rng.uniform(*SINUS_FAT_FRACTION)
    lobules = _smooth_noise(cv.lay.rng, inside.shape, 5.0 / float(cv.grid.spacing[0]))
    strands = inside & (lobules > np.quantile(lobules[inside], fat_fraction))
    cv.vol[sl][strands] = cv.hu["renal_vein"]


def _paint_outside_perirenal_and_back(cv: _Canvas, shape: _Shape, tissue: str, label: int) -> None:
    """Paint an organ outside Gerota's fascia and out of the back muscles, at its drawn volume: where its shape
    reaches into a kidney's fat it is hollowed (its renal impression), where it reaches into erector spinae,
    quadratus lumborum or psoas it stops at them (it lies in front of the posterior abdominal wall, Gray's Anatomy),
    and it grows until what is left holds the drawn volume again (up to four fixed-point steps), so that its volume
    stays in docs/anatomy.md's range. Uncompensated, the spleen lost 16% of its painted volume to the fat on average
    over phantoms 0-19, up to 53%. Painted over them, 3.6% of a spleen lay in the back muscles on average over
    phantoms 0-39, up to 20% (synth_033: a spleen reaching behind the left kidney to the spine).

    Only the spleen is painted so. In life the liver, the colon and the duodenum also meet the kidney across its fat,
    but with them kept out too the default network lost a kidney of the real CT (Dice 0.00-0.29) in four of five
    trainings (docs/benchmarks.md, "Real-CT transfer", Thirteenth session), so they are still painted over it. The
    liver reaches the back muscles in no phantom of 0-39 by more than 1.3% of its voxels."""
    target = None
    for _ in range(4):
        sl = cv.box(*shape.bounds())
        if sl is None:
            return
        inside = shape.value(*cv.grid.coords(sl)) < 1
        target = int(inside.sum()) if target is None else target
        kept = int((inside & ~cv.perirenal[sl] & ~cv.back_muscle[sl]).sum())
        if kept == 0 or abs(kept - target) <= 0.03 * target:
            break
        shape.scale((target / kept) ** (1 / 3))
    cv.paint(shape.value, *shape.bounds(), tissue, label, where=cv.outside_perirenal_and_back)


def _paint_organs(cv: _Canvas, lay: _Layout) -> None:
    """The four targets with their inner structure, in an order that makes them touch as in real abdomens:
    liver (with hepatic veins, and the IVC in its bare area cut out), gallbladder, the spleen outside Gerota's fascia,
    then the kidneys (which win where they meet the liver's renal impression), with renal vessels from the hilum to
    the aorta and IVC."""
    rng, sh, sy = lay.rng, lay.shapes, lay.spine_y
    liv = sh[L.LIVER]
    lo, hi = liv.bounds()
    cv.paint(liv.value, lo, hi, "liver", L.LIVER)
    ivc_top = liv.c[2] + 0.8 * liv.r[2]
    for tip in ((0.6, 0.1, 0.2), (0.0, 0.3, 0.3), (-0.6, 0.3, 0.1)):  # right, middle, left hepatic veins
        cv.tube([np.array([20, sy + 30, ivc_top - 10]), liv.world(np.array(tip) * liv.r)], rng.uniform(3, 5), "ivc",
                within=L.LIVER)  # organ masks include their intra-organ vessels
    gb = _Shape(rng, liv.c + np.array([-0.25 * liv.r[0], 0.35 * liv.r[1], -0.55 * liv.r[2]]), np.array([14, 14, 28]), warp=0.1)
    cv.paint(gb.value, *gb.bounds(), "gallbladder", L.BACKGROUND)
    if lay.pathology == "liver_lesion":
        les = _Shape(rng, liv.c + np.array([0.3 * liv.r[0], 0, 0.1 * liv.r[2]]) + rng.normal(0, 8, 3), np.full(3, rng.uniform(10, 22)), warp=0.1)
        cv.paint(les.value, *les.bounds(), "liver_lesion", within=L.LIVER)
    # IVC: right of the aorta in front of the spine, rising into the liver's bare area (not liver)
    ix, iy = rng.uniform(18, 28), sy + 24
    cv.paint(lambda x, y, z: np.sqrt(((x - ix) / 12) ** 2 + ((y - iy) / 9) ** 2) + 0 * z,
             (ix - 13, iy - 10, cv.lo[2]), (ix + 13, iy + 10, ivc_top), "ivc", label=L.BACKGROUND)

    spl = sh[L.SPLEEN]
    _paint_outside_perirenal_and_back(cv, spl, "spleen", L.SPLEEN)
    if lay.phase == "arterial":  # arciform enhancement: a mottled spleen early after injection
        mottle = _smooth_noise(rng, lay.grid.shape, 6 / lay.grid.spacing[0])
        sl = lay.grid.box(*spl.bounds())
        if sl is not None:
            m = cv.lab[sl] == L.SPLEEN
            cv.vol[sl][m] += 35 * mottle[sl][m]

    for organ in (L.KIDNEY_RIGHT, L.KIDNEY_LEFT):
        if organ == lay.missing:
            continue
        k = sh[organ]
        lo, hi = k.bounds()
        hit = cv.paint(k.value, lo, hi, "kidney_cortex", organ)
        cv.paint(k.pyramids, lo, hi, "kidney_medulla", within=organ)
        _paint_sinus(cv, k, organ, lo, hi)
        cv.paint(k.sinus, lo, hi, "renal_pelvis", within=organ, thresh=0.55)
        h = k.hilum()
        s = -k.medial  # +1 on the right
        # renal vein to the IVC (the left one crossing in front of the aorta), artery behind it to the aorta
        ivc = np.array([22, sy + 24, h[2] + 5])
        via = [h, np.array([-10, sy + 44, h[2] + 5]), ivc] if organ == L.KIDNEY_LEFT else [h, ivc]
        cv.tube(via, rng.uniform(4, 6), "renal_vein")
        cv.tube([h + np.array([0, -6, 3]), np.array([lay.aorta_x, sy + 30, h[2] + 12])], 3.0, "aorta")
        cv.tube([h, h + np.array([s * -8, 2, -30]), h + np.array([s * -12, 0, -90])], 3.0, "renal_pelvis")  # ureter
        if lay.pathology == "kidney_cyst" and hit is not None and organ == L.KIDNEY_LEFT:
            cy = _Shape(rng, k.c + np.array([-0.6 * k.r[0], 0, 0.4 * k.r[2]]), np.full(3, rng.uniform(8, 16)), warp=0.05)
            cv.paint(cy.value, *cy.bounds(), "cyst", organ)



# ---------------------------------------------------------------------------------------------------------
# Phase 5: scanner


def _scanner(cv: _Canvas, lay: _Layout, cfg: SyntheticConfig) -> np.ndarray:
    """What a scanner adds: tissue texture, beam-hardening streaks fanning from the spine, partial-volume blur
    (in plane, of a width drawn per case, and along the slice), noise correlated over a voxel or two (reconstruction
    kernels), and, when the field of view is narrower than the patient, the reconstruction circle's edge. Returns HU,
    float32."""
    rng, g = lay.rng, lay.grid
    vol = cv.vol
    tissue = (vol > -300) & (vol < 300)
    vol += np.where(tissue, rng.uniform(3, 9) * _smooth_noise(rng, g.shape, 8), 0)
    # streaks: an angular pattern round the vertebral body, fading with distance (Barrett and Keat 2004)
    x, y, _ = g.coords(tuple(slice(0, n) for n in g.shape))
    theta = np.arctan2(y - lay.spine_y, x)
    r = np.hypot(x, y - lay.spine_y)
    amp = rng.uniform(0, 25)
    streak = amp * np.cos(rng.integers(6, 14) * theta + rng.uniform(0, 2 * np.pi)) * np.exp(-r / 70) * (r > 25)
    vol += np.where(tissue, streak.astype(np.float32), 0)
    # the in-plane point-spread function differs from scan to scan: sharp to soft reconstruction kernels, and scans
    # stored on a grid coarser than they were reconstructed on (the bundled real CT is kept at 3 mm); sigma 0.6-1.6
    # voxels here, a 10-90% edge of 1.5-4.1 voxels (2.7-10 mm). A single sharp PSF taught edges sharper than real
    # scans': blurring the real CT cost the kidneys up to 0.11 Dice; sigma 0.6-1.1 took part of that back, 0.6-1.6
    # more (docs/benchmarks.md, Fourteenth and Fifteenth sessions)
    soft = rng.uniform(0.6, 1.6)
    # along z a slice averages the body over its thickness (its sensitivity profile about as wide as the slice), so
    # the partial volume is a share of a slice whatever its mm; a fixed 1.2 mm left thick slices' edges clean steps
    sigma = (soft, soft, rng.uniform(0.35, 0.5))
    vol = ndimage.gaussian_filter(vol, sigma, mode="nearest", truncate=3.0)
    white = rng.normal(0, 1, g.shape).astype(np.float32)
    s = rng.uniform(0.0, 0.8)
    corr = ndimage.gaussian_filter(white, (s, s, 0), truncate=2.5) if s > 0.3 else white
    corr *= rng.uniform(*cfg.noise_hu) / max(float(corr.std()), 1e-6)
    vol += corr
    if lay.inplane_cut:  # outside the reconstruction circle the scanner writes its padding value
        cx, cy = g.origin[:2] + g.spacing[:2] * (np.array(g.shape[:2]) - 1) / 2
        rad = g.spacing[0] * g.shape[0] / 2 * rng.uniform(1.0, 1.25)
        vol[np.broadcast_to(np.hypot(x - cx, y - cy) > rad, g.shape)] = -1024
    return np.clip(vol, -1024, 3071)


def _paint_anatomy(lay: _Layout) -> _Canvas:
    """Every painting phase in order: the anatomy in HU and labels on the generator's grid, before the scanner adds
    texture, blur and noise (tests of what is painted read this canvas)."""
    cv = _Canvas(lay)
    _paint_body_wall(cv, lay)
    _paint_distractors(cv, lay)
    _paint_organs(cv, lay)
    _paint_skeleton(cv, lay)
    return cv


def generate_case(index: int, cfg: SyntheticConfig) -> Case:
    """Generate case `index`: the same (index, cfg) always gives the same arrays."""
    lay = _draw_layout(index, cfg)
    cv = _paint_anatomy(lay)
    vol, lab = _scanner(cv, lay, cfg), cv.lab

    g = lay.grid
    affine = np.diag([*g.spacing, 1.0])
    affine[:3, 3] = g.origin
    notes = list(lay.notes)
    if lay.lps:  # store with i towards the patient's left and j towards posterior, as DICOM/ITK tools write
        vol, lab = vol[::-1, ::-1], lab[::-1, ::-1]
        flip = np.diag([-1.0, -1.0, 1.0, 1.0])
        flip[:3, 3] = [g.shape[0] - 1, g.shape[1] - 1, 0]  # index units: i' = n - 1 - i
        affine = affine @ flip
        notes.append("stored_LPS")
    image = np.rint(vol).astype(np.int16) if lay.dtype == np.int16 else vol.astype(np.float32)
    return Case(np.ascontiguousarray(image), np.ascontiguousarray(lab), affine, notes)
