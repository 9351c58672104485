"""Augmentation never mirrors: every kidney voxel stays on its own side; rotations are rotations in mm (no shear
on the anisotropic grid); intensity changes and domain randomisation keep the labels."""

import math

import numpy as np
import torch

from abdoseg import labels as L
from abdoseg.augment import (AugmentSpec, _rotation, augment, bias_field, coarser, displacement, intensity_curve,
                             label_contrast, mirror, rotation_in_mm, spatial)

SPACING = (2.5, 2.5, 4.0)  # the processed grid
ISO = (1.0, 1.0, 1.0)


def _two_kidneys(b=4, n=48):
    lab = torch.zeros(b, n, n, n, dtype=torch.long)
    lab[:, 30:42, 14:34, 12:36] = L.KIDNEY_RIGHT  # RAS+: the patient's right is +x (high first index)
    lab[:, 6:18, 14:34, 12:36] = L.KIDNEY_LEFT
    img = (lab > 0).float()[:, None] * 0.6 + 0.2
    return img, lab


def test_rotations_are_proper():
    angles = torch.rand(64, 3) * 2 - 1
    det = torch.linalg.det(_rotation(angles))
    assert torch.allclose(det, torch.ones(64), atol=1e-5)


def test_every_kidney_voxel_stays_on_its_side():
    spec = AugmentSpec(rotate_deg=15.0, scale=(0.85, 1.15), probability=1.0, elastic_mm=0.0)  # the rotation alone
    gen = torch.Generator().manual_seed(0)
    for _ in range(10):
        img, lab = _two_kidneys()
        _, out = spatial(img, lab, spec, gen, ISO)  # 1 mm voxels: the cube patch is a cube in mm too
        for b in range(out.shape[0]):
            right = torch.nonzero(out[b] == L.KIDNEY_RIGHT)[:, 0]
            left = torch.nonzero(out[b] == L.KIDNEY_LEFT)[:, 0]
            assert len(right) and len(left)
            assert right.min() > 24 > left.max(), (right.min(), left.max())


def test_augment_keeps_label_ids_and_shapes():
    img, lab = _two_kidneys()
    gen = torch.Generator().manual_seed(1)
    out_img, out_lab = augment(img, lab, AugmentSpec(probability=1.0), gen, ISO)
    assert out_img.shape == img.shape and out_lab.shape == lab.shape
    assert set(np.unique(out_lab.numpy())) <= {0, L.KIDNEY_RIGHT, L.KIDNEY_LEFT}
    assert not torch.equal(out_img, img)


def test_same_generator_seed_same_augmentation():
    img, lab = _two_kidneys()
    spec = AugmentSpec(intensity_curve=0.05, bias_field=0.1, domain_probability=0.5)
    a = augment(img, lab, spec, torch.Generator().manual_seed(5), SPACING)
    b = augment(img, lab, spec, torch.Generator().manual_seed(5), SPACING)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])


def test_left_right_mirror_swaps_kidney_labels():
    img, lab = _two_kidneys(b=16)
    lab[:, 6:10] = 0  # a smaller left kidney, so that a mirrored patient differs from the original
    img = (lab > 0).float()[:, None] * 0.6 + 0.2
    out_img, out_lab = mirror(img, lab, (0,), torch.Generator().manual_seed(3))
    flipped = 0
    for b in range(out_lab.shape[0]):
        right = torch.nonzero(out_lab[b] == L.KIDNEY_RIGHT)[:, 0]
        left = torch.nonzero(out_lab[b] == L.KIDNEY_LEFT)[:, 0]
        assert right.min() > 24 > left.max()  # whatever was mirrored, label 2 stays on the right (+x)
        flipped += not torch.equal(out_img[b], img[b])
    assert 0 < flipped < 16  # some samples were mirrored, some not


def test_other_mirrors_keep_the_labels():
    img, lab = _two_kidneys(b=8)
    _, out = mirror(img, lab, (1, 2), torch.Generator().manual_seed(4))
    assert (out == L.KIDNEY_RIGHT).sum() == (lab == L.KIDNEY_RIGHT).sum()
    for b in range(8):
        assert torch.nonzero(out[b] == L.KIDNEY_RIGHT)[:, 0].min() > 24


def test_rotation_in_mm_is_a_rotation_without_shear():
    """In millimetres (H theta H^-1, scale undone) the sampling matrix is orthogonal with determinant +1."""
    shape = (48, 40, 32)
    angles = (torch.rand(32, 3) * 2 - 1) * math.radians(30)
    scales = torch.empty(32).uniform_(0.8, 1.2)
    theta = rotation_in_mm(angles, scales, shape, SPACING)
    half = torch.tensor([shape[d] * SPACING[d] / 2 for d in (2, 1, 0)])
    in_mm = half[None, :, None] * theta / half[None, None, :] * scales.view(-1, 1, 1)
    eye = torch.eye(3).expand(32, 3, 3)
    assert torch.allclose(in_mm @ in_mm.transpose(1, 2), eye, atol=1e-5)
    assert torch.allclose(torch.linalg.det(in_mm), torch.ones(32), atol=1e-5)


def _ball_moments(lab: torch.Tensor, spacing) -> np.ndarray:
    """Eigenvalues of the second-moment matrix (mm^2) of the voxels labelled 1."""
    pts = torch.nonzero(lab == 1).double().numpy() * np.asarray(spacing)
    return np.linalg.eigvalsh(np.cov(pts.T))


def test_a_ball_in_mm_stays_a_ball_on_the_anisotropic_grid():
    """A 25 mm ball on the 2.5 x 2.5 x 4 mm grid, rotated by 30 degrees about each axis, keeps its volume and
    round shape; the rotation of normalised patch coordinates (the old way) turned it into a sheared ellipsoid."""
    shape = (48, 40, 32)
    idx = [torch.arange(n, dtype=torch.float32) for n in shape]
    x, y, z = torch.meshgrid(*[(i - (n - 1) / 2) * s for i, n, s in zip(idx, shape, SPACING)], indexing="ij")
    lab = ((x ** 2 + y ** 2 + z ** 2) < 25.0 ** 2).long()[None]
    img = lab[:, None].float()
    before = _ball_moments(lab[0], SPACING)
    spec = AugmentSpec(rotate_deg=30.0, scale=(1.0, 1.0), probability=1.0, elastic_mm=0.0)
    for seed in range(4):
        _, out = spatial(img, lab, spec, torch.Generator().manual_seed(seed), SPACING)
        after = _ball_moments(out[0], SPACING)
        assert abs(int(out.sum()) - int(lab.sum())) < 0.05 * int(lab.sum())
        assert after.max() / after.min() < 1.12, after  # round (voxelisation alone gives ~1.05)
        assert np.allclose(after, before, rtol=0.12)


def test_elastic_displacement_bends_but_never_folds_left_right():
    """On the default patch and grid, the smooth displacement (params.yaml's 5 mm) moves organ outlines, yet the
    patient's left-right order of every voxel is kept: a ramp along x (the patient's right is +x) stays monotonic
    along x in every row of every sample, and both kidneys keep their side. At sd 40 mm it does fold (the check can
    fail)."""
    shape = (64, 48, 32)
    lab = torch.zeros(16, *shape, dtype=torch.long)
    lab[:, 44:56, 12:36, 6:26] = L.KIDNEY_RIGHT
    lab[:, 8:20, 12:36, 6:26] = L.KIDNEY_LEFT
    ramp = torch.linspace(0, 1, shape[0]).view(1, 1, -1, 1, 1).expand(16, 1, *shape).contiguous()

    def bend(sd_mm: float, seed: int = 0):
        spec = AugmentSpec(rotate_deg=10.0, scale=(0.9, 1.1), probability=1.0, elastic_mm=sd_mm)
        return spatial(ramp, lab, spec, torch.Generator().manual_seed(seed), SPACING)

    unbent = spatial(ramp, lab, AugmentSpec(rotate_deg=10.0, scale=(0.9, 1.1), probability=1.0, elastic_mm=0.0),
                     torch.Generator().manual_seed(0), SPACING)[1]
    for seed in range(4):
        img, out = bend(5.0, seed)
        assert (img[:, 0, 1:] - img[:, 0, :-1] >= -1e-6).all()
        for b in range(out.shape[0]):
            right = torch.nonzero(out[b] == L.KIDNEY_RIGHT)[:, 0]
            left = torch.nonzero(out[b] == L.KIDNEY_LEFT)[:, 0]
            assert len(right) and len(left) and right.min() > 32 > left.max()
    moved = (bend(5.0)[1] != unbent).float().mean()
    assert moved > 0.005, moved  # the displacement acts: outlines move beyond the rotation's
    img, _ = bend(40.0)
    assert (img[:, 0, 1:] - img[:, 0, :-1] < -1e-3).any()


def test_elastic_displacement_is_isotropic_in_mm_and_only_on_the_rotated_patches():
    """The displacement has one sd in millimetres along every axis of the anisotropic grid (its normalised offsets,
    scaled back by the patch's half-extents in mm in affine_grid's (Z, Y, X) order, agree within 5%), and the patches
    that do not get the spatial family come out untouched."""
    shape = (64, 48, 32)
    half = torch.tensor([shape[d] * SPACING[d] / 2 for d in (2, 1, 0)])  # 64, 60, 80 mm
    offsets = displacement(512, shape, SPACING, 5.0, torch.Generator().manual_seed(0), torch.device("cpu"))
    sd_mm = (offsets * half).flatten(0, 3).std(0)
    assert sd_mm.max() / sd_mm.min() < 1.05, sd_mm
    img, lab = _two_kidneys(b=32)
    spec = AugmentSpec(rotate_deg=0.0, scale=(1.0, 1.0), probability=0.5, elastic_mm=5.0)
    _, out = spatial(img, lab, spec, torch.Generator().manual_seed(3), ISO)
    same = [bool(torch.equal(out[b], lab[b])) for b in range(32)]
    assert 0 < sum(same) < 32, sum(same)


def test_domain_randomisation_keeps_labels_and_order():
    """The intensity curve is monotonic (tissue order kept), the field is smooth, neither touches labels."""
    gen = torch.Generator().manual_seed(7)
    ramp = torch.linspace(0, 1, 200).view(1, 1, 200, 1, 1).expand(1, 1, 200, 2, 2)
    for _ in range(20):
        out = intensity_curve(ramp, 0.1, gen)
        assert (out[0, 0, 1:, 0, 0] - out[0, 0, :-1, 0, 0] >= -1e-6).all()
    field = bias_field(torch.zeros(1, 16, 16, 16), 0.2, gen)
    assert field.abs().max() <= 0.2 * 2.5 and field.std() > 0
    img, lab = _two_kidneys()
    spec = AugmentSpec(rotate_deg=0.0, scale=(1.0, 1.0), intensity_curve=0.1, bias_field=0.2, domain_probability=1.0)
    out_img, out_lab = augment(img, lab, spec, torch.Generator().manual_seed(2), SPACING)
    assert torch.equal(out_lab, lab)
    assert not torch.equal(out_img, img)


def test_label_contrast_shifts_each_region_by_one_amount():
    """Each label's region moves by its own constant (so an organ's edge with its surroundings changes), and every
    voxel of a region by the same amount; labels are only read."""
    gen = torch.Generator().manual_seed(3)
    img, lab = _two_kidneys()
    shifted = label_contrast(img[0], lab[:1], 0.2, gen)
    delta = (shifted - img[0])[0]
    per_label = {int(c): torch.unique(delta[lab[0] == c]) for c in torch.unique(lab[0])}
    assert all(len(v) == 1 for v in per_label.values()), per_label
    assert len({round(float(v), 6) for v in per_label.values()}) == len(per_label)  # distinct shifts


def test_a_coarser_scan_softens_edges_and_keeps_means_and_labels():
    """Averaged onto voxels twice the grid's and interpolated back: a step that falls inside a coarse voxel (between
    fine voxels 14 and 15) becomes the ramp 1/8, 3/8, 5/8, 7/8 centred on the edge (point sampling would shift it
    to 1/4, 3/4 a voxel later), flat regions keep their values, the mean is kept, and factor 1 changes nothing."""
    step = torch.zeros(1, 1, 32, 8, 8)
    step[:, :, 15:] = 1.0
    soft = coarser(step, (2.0, 2.0, 2.0))
    profile = soft[0, 0, :, 4, 4]
    assert torch.allclose(profile[13:17], torch.tensor([0.125, 0.375, 0.625, 0.875]), atol=1e-5)
    assert torch.allclose(profile[:13], torch.zeros(13)) and torch.allclose(profile[17:], torch.ones(15))
    assert torch.isclose(soft.mean(), step.mean(), atol=1e-3)
    assert torch.equal(coarser(step, (1.0, 1.0, 1.0)), step)


def test_a_coarser_scan_coarsens_only_the_axes_it_is_given():
    """The through-plane factor (the third) softens an edge across slices and leaves an in-plane edge sharp."""
    across_x = torch.zeros(1, 1, 16, 16, 16)
    across_x[:, :, 7:] = 1.0
    across_z = across_x.permute(0, 1, 4, 3, 2).contiguous()
    assert torch.allclose(coarser(across_x, (1.0, 1.0, 2.0)), across_x, atol=1e-6)
    assert not torch.allclose(coarser(across_z, (1.0, 1.0, 2.0)), across_z, atol=1e-2)


def test_resolution_in_augment_changes_images_not_labels():
    img, lab = _two_kidneys()
    spec = dict(rotate_deg=0.0, scale=(1.0, 1.0), probability=0.0, resolution_factor=(1.5, 2.0))
    on_img, on_lab = augment(img, lab, AugmentSpec(**spec, resolution_probability=1.0), torch.Generator().manual_seed(4),
                             SPACING)
    off_img, off_lab = augment(img, lab, AugmentSpec(**spec), torch.Generator().manual_seed(4), SPACING)
    assert torch.equal(on_lab, off_lab)
    assert (on_img - off_img).abs().max() > 0.1  # the kidneys' edges are now ramps


def test_resolution_off_draws_no_number():
    """Off (probability 0), the family draws nothing, so the default's batches are those it had before the family
    came. On at a probability too small ever to apply it, it draws its gate's number, and every later draw (scale,
    gamma, blur, noise) moves: the two batches differ. Were the gate drawn when off, they would be equal."""
    img, lab = _two_kidneys(b=3, n=24)
    spec = dict(probability=1.0, blur_sigma=(0.5, 1.0), resolution_factor=(1.5, 2.0))
    off = augment(img, lab, AugmentSpec(**spec), torch.Generator().manual_seed(5), SPACING)[0]
    gated = augment(img, lab, AugmentSpec(**spec, resolution_probability=1e-12), torch.Generator().manual_seed(5),
                    SPACING)[0]
    assert not torch.allclose(off, gated, atol=1e-3)


def _everything_on():
    return AugmentSpec(probability=1.0, mirror_axes=(0, 1), intensity_curve=0.05, bias_field=0.1, label_contrast=0.1,
                       domain_probability=1.0, blur_sigma=(0.5, 1.0), resolution_factor=(1.2, 1.8),
                       resolution_probability=1.0)


def test_augment_builds_every_tensor_on_its_inputs_device():
    """Under `torch.device("meta")` a tensor built without `device=` lands on the meta device and cannot meet the
    CPU inputs: the result equals the plain CPU result only if every tensor and draw follows the inputs' device,
    which is what lets augment run on CUDA with a CUDA generator (issue #18)."""
    img, lab = _two_kidneys(b=2, n=24)
    spec = _everything_on()
    expected = augment(img, lab, spec, torch.Generator().manual_seed(9), SPACING)
    with torch.device("meta"):
        got = augment(img, lab, spec, torch.Generator().manual_seed(9), SPACING)
    assert got[0].device.type == got[1].device.type == "cpu"
    assert torch.equal(got[0], expected[0]) and torch.equal(got[1], expected[1])
