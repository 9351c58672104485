"""Training augmentation on a batch of patches, in torch, with no left-right mirror.

Spatial: a small random rotation (proper, determinant +1: it never mirrors) and scaling, built in millimetres
(the processed grid is anisotropic, 2.5 x 2.5 x 4 mm: a rotation of normalised patch coordinates would shear
anatomy), applied to the image (trilinear) and labels (nearest) with one sampling grid; and, only along the
axes listed in `mirror_axes` (none by default: processed arrays are all RAS+, so anatomy always has its side),
mirroring, where a mirror of axis 0, the patient's left-right, swaps labels 2 and 3 with it. With `elastic_mm`, the
patches that get the rotation also get a smooth random displacement, added to the same sampling grid (one
resampling, drawn from `gen` on the batch's device: why it is not MONAI's Rand3DElastic, which draws from numpy and
resamples on its own). The phantom's kidneys are all beans of one family; bent, their lean and their hilum's lips
vary as real ones do, and on the bundled real CT the right kidney came out at 0.80 or more in more trainings
(docs/benchmarks.md, "Real-CT transfer", twenty-fourth session). Smooth and small (sd 5 mm at the points of a lattice
39-53 mm apart, about 2.8 mm rms per voxel) it never turns the left-right axis over: over 2,560 default patches the
sampling position's derivative along x stayed at 0.43 or more, so no voxel changes side (tested); a slight local fold
elsewhere (Jacobian down to -0.02) showed in 2 of them.

Intensity (labels untouched): scale and shift, gamma, Gaussian noise, Gaussian blur, a coarser scan's resolution,
and three kinds of domain randomisation after SynthSeg (Billot et al., Medical Image Analysis 2023) for a model
trained on phantoms only: a random monotonic intensity curve (tissue contrasts change, their order does not), a
smooth additive field (scanner cupping, beam hardening, contrast that varies across the body) and a shift per label
region. The resolution family is SynthSeg's too: the patch is averaged onto voxels a drawn factor times the grid's
(one factor in plane, one through plane) and interpolated back, as a scan reconstructed with larger voxels (or a
dataset stored at 3 mm) is when it is resampled onto the grid, so its organ edges are softer than a phantom's. On the
bundled real CT (3 mm) the default model draws the kidneys too small and smaller still when the scan is blurred
(bench/real_ct_probe.py; docs/benchmarks.md, "Real-CT transfer").

Every tensor is built on the device of the batch and every draw comes from `gen`, which must live there too: on
CUDA, `augment(x_cuda, y_cuda, spec, torch.Generator("cuda"), spacing)` augments where the batch already is
(issue #18), and on the CPU the result is the same whichever process runs it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from . import labels as L


@dataclass(frozen=True)
class AugmentSpec:
    rotate_deg: float = 10.0
    scale: tuple[float, float] = (0.9, 1.1)
    intensity_scale: tuple[float, float] = (0.9, 1.1)
    intensity_shift: float = 0.05
    gamma: tuple[float, float] = (0.8, 1.25)
    noise_sd: float = 0.03
    blur_sigma: tuple[float, float] = (0.0, 1.0)
    probability: float = 0.2  # per transform family
    mirror_axes: tuple[int, ...] = ()  # processed (RAS) axes to mirror with probability 1/2; 0 is left-right
    intensity_curve: float = 0.0  # sd of the control points of a random monotonic curve on [0, 1] (0: off)
    bias_field: float = 0.0  # largest amplitude of a smooth additive field, in normalised intensity (0: off)
    label_contrast: float = 0.0  # sd of a shift drawn per label region (organs and background), normalised intensity (0: off)
    domain_probability: float = 0.0  # share of patches given the curve, the field and the label shifts
    resolution_factor: tuple[float, float] = (1.0, 1.0)  # (low, high): coarse voxel size in grid voxels, drawn once in
    # plane and once through plane
    resolution_probability: float = 0.0  # share of patches seen at that coarser resolution
    elastic_mm: float = 5.0  # sd (mm) of a smooth random displacement on the patches that get the rotation (0: off)

    @classmethod
    def from_params(cls, params: dict) -> "AugmentSpec":
        kw = {k: (tuple(v) if isinstance(v, list) else v) for k, v in params.items()}
        return cls(**kw)


def _rotation(angles: torch.Tensor) -> torch.Tensor:
    """(B, 3) angles in radians -> (B, 3, 3) rotations about the three axes, composed."""
    cx, cy, cz = torch.cos(angles).unbind(1)
    sx, sy, sz = torch.sin(angles).unbind(1)
    one, zero = torch.ones_like(cx), torch.zeros_like(cx)
    rx = torch.stack([one, zero, zero, zero, cx, -sx, zero, sx, cx], 1).view(-1, 3, 3)
    ry = torch.stack([cy, zero, sy, zero, one, zero, -sy, zero, cy], 1).view(-1, 3, 3)
    rz = torch.stack([cz, -sz, zero, sz, cz, zero, zero, zero, one], 1).view(-1, 3, 3)
    return rz @ ry @ rx


def half_extents_mm(shape: tuple[int, int, int], spacing: tuple[float, float, float],
                    device: torch.device) -> torch.Tensor:
    """Half the size in mm of a (X, Y, Z) patch, in `affine_grid`'s (Z, Y, X) order: the scale between a
    grid's normalised coordinates and millimetres, which the rotation and the displacement both need."""
    return torch.tensor([shape[d] * spacing[d] / 2 for d in (2, 1, 0)], dtype=torch.float32, device=device)


def rotation_in_mm(angles: torch.Tensor, scales: torch.Tensor, shape: tuple[int, int, int],
                   spacing: tuple[float, float, float]) -> torch.Tensor:
    """(B, 3, 3) matrices for `F.affine_grid` that rotate by `angles` (B, 3) and zoom by `scales` (B,) in
    millimetres about the centre of a (X, Y, Z) patch with voxel `spacing`.

    affine_grid works in normalised coordinates (-1..1 along each axis, in (Z, Y, X) order for a (B, C, X, Y,
    Z) tensor), so the rotation is conjugated by the patch's half-extents in mm: theta = H^-1 R H / s. In mm
    that is a pure rotation and zoom, whatever the spacing.
    """
    half = half_extents_mm(shape, spacing, angles.device)
    rot = _rotation(angles)
    return rot * half[None, None, :] / half[None, :, None] / scales.view(-1, 1, 1)


def spatial(image: torch.Tensor, labels: torch.Tensor, spec: AugmentSpec, gen: torch.Generator,
            spacing: tuple[float, float, float]) -> tuple[torch.Tensor, torch.Tensor]:
    """Rotate and scale (B, 1, X, Y, Z) images and (B, X, Y, Z) labels about the patch centre, in mm."""
    b, dev = image.shape[0], image.device
    angles = (torch.rand(b, 3, generator=gen, device=dev) * 2 - 1) * math.radians(spec.rotate_deg)
    scales = torch.empty(b, device=dev).uniform_(*spec.scale, generator=gen)
    apply = (torch.rand(b, generator=gen, device=dev) < spec.probability).float().view(b, 1, 1)
    eye = torch.eye(3, device=dev).expand(b, 3, 3)
    mat = apply * rotation_in_mm(angles, scales, tuple(image.shape[2:]), spacing) + (1 - apply) * eye
    theta = torch.cat([mat, torch.zeros(b, 3, 1, device=dev)], dim=2)
    grid = F.affine_grid(theta, list(image.shape), align_corners=False)
    if spec.elastic_mm > 0:
        grid = grid + apply.view(b, 1, 1, 1, 1) * displacement(b, tuple(image.shape[2:]), spacing, spec.elastic_mm, gen, dev)
    img = F.grid_sample(image, grid, mode="bilinear", padding_mode="border", align_corners=False)
    lab = F.grid_sample(labels[:, None].float(), grid, mode="nearest", padding_mode="zeros", align_corners=False)
    return img, lab[:, 0].long()


def displacement(b: int, shape: tuple[int, int, int], spacing: tuple[float, float, float], sd_mm: float,
                 gen: torch.Generator, device: torch.device, lattice: int = 4) -> torch.Tensor:
    """(B, X, Y, Z, 3) offsets for an `affine_grid` grid: a random displacement of sd `sd_mm` at the points of a
    4 x 4 x 4 lattice over the patch (39-53 mm apart on the default patch), trilinearly interpolated, in mm and
    then in the grid's normalised (Z, Y, X) coordinates. It bends organ outlines (a kidney's lean, its hilum's lips)."""
    coarse = torch.randn((b, 3, lattice, lattice, lattice), generator=gen, device=device) * sd_mm
    field = F.interpolate(coarse, size=shape, mode="trilinear", align_corners=True)
    half = half_extents_mm(shape, spacing, device)
    return (field / half.view(1, 3, 1, 1, 1)).permute(0, 2, 3, 4, 1)


def mirror(image: torch.Tensor, labels: torch.Tensor, axes: tuple[int, ...], gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Mirror each sample along each of `axes` with probability 1/2; a left-right mirror swaps the kidney labels."""
    swap = torch.tensor(L.SWAP_LEFT_RIGHT, dtype=labels.dtype, device=labels.device)
    images, labs = [], []
    for x, y in zip(image, labels):
        for axis in axes:
            if torch.rand(1, generator=gen, device=image.device) < 0.5:
                x, y = torch.flip(x, (axis + 1,)), torch.flip(y, (axis,))
                if axis == 0:
                    y = swap[y]
        images.append(x)
        labs.append(y)
    return torch.stack(images), torch.stack(labs)


def _blur(image: torch.Tensor, sigma: float) -> torch.Tensor:
    radius = max(1, int(math.ceil(2.5 * sigma)))
    x = torch.arange(-radius, radius + 1, dtype=image.dtype, device=image.device)
    k = torch.exp(-0.5 * (x / sigma) ** 2)
    k = k / k.sum()
    out = image
    for dim in range(3):
        shape = [1, 1, 1, 1, 1]
        shape[2 + dim] = k.numel()
        pad = [0] * 6
        pad[2 * (2 - dim)] = pad[2 * (2 - dim) + 1] = radius
        out = F.conv3d(F.pad(out, pad, mode="replicate"), k.view(shape))
    return out


def coarser(image: torch.Tensor, factors: tuple[float, float, float]) -> torch.Tensor:
    """`image` (N, C, X, Y, Z) as a scan with voxels `factors` (per axis) times larger would show it on this grid:
    each coarse voxel the mean of the fine voxels in its window (area averaging: a detector integrates, it does not
    point-sample; the coarse size is rounded to whole voxels), then trilinear interpolation back onto the grid, as
    preprocessing resamples a coarse scan."""
    size = tuple(int(n) for n in image.shape[2:])
    small = tuple(max(2, round(n / f)) for n, f in zip(size, factors))
    return F.interpolate(F.interpolate(image, size=small, mode="area"), size=size, mode="trilinear", align_corners=False)


def _gamma(x: torch.Tensor, gamma: float) -> torch.Tensor:
    """Gamma on the patch's own range (nnU-Net's way), so it works for windowed [0, 1] and z-scored images alike."""
    lo, hi = x.min(), x.max()
    span = (hi - lo).clamp_min(1e-6)
    return ((x - lo) / span) ** gamma * span + lo


def intensity_curve(x: torch.Tensor, sd: float, gen: torch.Generator, knots: int = 6) -> torch.Tensor:
    """A random monotonic piecewise-linear remapping of [0, 1] (values outside keep the end slopes): knot
    heights are the identity plus Gaussian jitter, sorted so that tissue order is kept."""
    xs = torch.linspace(0, 1, knots, device=x.device)
    ys = torch.sort(xs + torch.randn(knots, generator=gen, device=x.device) * sd).values
    idx = torch.clamp(torch.bucketize(x.clamp(0, 1), xs) - 1, 0, knots - 2)
    x0, x1, y0, y1 = xs[idx], xs[idx + 1], ys[idx], ys[idx + 1]
    inside = y0 + (x.clamp(0, 1) - x0) * (y1 - y0) / (x1 - x0)
    return inside + torch.clamp(x - 1, min=0) + torch.clamp(x, max=0)


def bias_field(x: torch.Tensor, amplitude: float, gen: torch.Generator) -> torch.Tensor:
    """Add a smooth random field (a 3x3x3 Gaussian lattice, trilinearly upsampled) of at most `amplitude`."""
    coarse = torch.randn((1, 1, 3, 3, 3), generator=gen, device=x.device)
    field = F.interpolate(coarse, size=tuple(x.shape[-3:]), mode="trilinear", align_corners=True)
    return x + field[0] * amplitude * float(torch.rand(1, generator=gen, device=x.device)) / 2


def label_contrast(x: torch.Tensor, labels: torch.Tensor, sd: float, gen: torch.Generator) -> torch.Tensor:
    """Shift each label's region (background and each organ) by its own Gaussian amount: an organ's contrast with
    its surroundings changes size and even sign, so shape and context must carry the decision (SynthSeg draws every
    label's intensity anew for each sample; ours draws a shift on top of the phantom's)."""
    shifts = torch.randn(L.NUM_CLASSES, generator=gen, device=x.device) * sd
    return x + shifts[labels.long()]


def intensity(image: torch.Tensor, spec: AugmentSpec, gen: torch.Generator, labels: torch.Tensor) -> torch.Tensor:
    """Domain randomisation (curve, field and label shifts) with `spec.domain_probability`; a coarser resolution
    with `spec.resolution_probability`; then scale and shift, gamma, blur and noise, each applied per sample with
    `spec.probability`. `labels` (B, X, Y, Z) are only read."""
    out, dev = [], image.device

    def draw() -> torch.Tensor:
        return torch.rand(1, generator=gen, device=dev)

    def uniform(bounds: tuple[float, float]) -> torch.Tensor:
        return torch.empty(1, device=dev).uniform_(*bounds, generator=gen)

    for x, lab in zip(image, labels):
        x = x[None]
        if draw() < spec.domain_probability:
            if spec.intensity_curve > 0:
                x = intensity_curve(x, spec.intensity_curve, gen)
            if spec.bias_field > 0:
                x = bias_field(x, spec.bias_field, gen)
            if spec.label_contrast > 0:
                x = label_contrast(x, lab[None], spec.label_contrast, gen)
        # before noise, whose grain is the grid's; no draw when off, so other settings keep their batches
        if spec.resolution_probability > 0 and draw() < spec.resolution_probability:
            in_plane = float(uniform(spec.resolution_factor))
            x = coarser(x, (in_plane, in_plane, float(uniform(spec.resolution_factor))))
        if draw() < spec.probability:
            x = x * uniform(spec.intensity_scale) + (draw() * 2 - 1) * spec.intensity_shift
        if draw() < spec.probability:
            x = _gamma(x, float(uniform(spec.gamma)))
        if draw() < spec.probability:
            sigma = float(uniform(spec.blur_sigma))
            if sigma > 0.3:
                x = _blur(x, sigma)
        if draw() < spec.probability:
            x = x + torch.randn(x.shape, generator=gen, device=dev) * spec.noise_sd * float(draw())
        out.append(x[0])
    return torch.stack(out)


def augment(image: torch.Tensor, labels: torch.Tensor, spec: AugmentSpec, gen: torch.Generator,
            spacing: tuple[float, float, float]) -> tuple[torch.Tensor, torch.Tensor]:
    """The whole training augmentation: mirroring (if any), spatial (in mm, with the patch's voxel `spacing`),
    then intensity."""
    if spec.mirror_axes:
        image, labels = mirror(image, labels, spec.mirror_axes, gen)
    image, labels = spatial(image, labels, spec, gen, spacing)
    return intensity(image, spec, gen, labels), labels
