"""The built-in phantom: deterministic, anatomically placed, realistic volumes and Hounsfield units, varied storage."""

import numpy as np
import pytest
from scipy import ndimage
from scipy.spatial import Delaunay

from abdoseg import ingest, nifti
from abdoseg import labels as L
from abdoseg.preprocess import to_canonical
from abdoseg.synthetic import (ENHANCEMENT_DOSE, ENHANCEMENT_TIME, EXTENT_MM, OFFSET_MM, PHASES, VOLUME_ML,
                               SyntheticConfig, _Canvas, _draw_layout, _organ_volume_ml, _paint_anatomy, _scanner,
                               enhanced_hu, generate_case)

N = 10


@pytest.fixture(scope="module")
def cases(synth_cfg):
    return [generate_case(i, synth_cfg) for i in range(N)]


@pytest.fixture(scope="module")
def canvases(synth_cfg):
    """The painted anatomy (the generator's grid, before the scanner) of the same cases, with their layouts."""
    out = []
    for i in range(N):
        lay = _draw_layout(i, synth_cfg)
        out.append((lay, _paint_anatomy(lay)))
    return out


def _world_centroid(mask: np.ndarray, affine: np.ndarray) -> np.ndarray:
    return affine[:3, :3] @ np.argwhere(mask).mean(0) + affine[:3, 3]


def test_same_seed_gives_byte_identical_files(tmp_path, synth_cfg):
    rows = [ingest.write_case(tmp_path / run, "c", *_arrays(generate_case(3, synth_cfg)), source="synthetic")
            for run in ("a", "b")]
    assert rows[0]["sha256"] == rows[1]["sha256"]
    for sub in ("images", "labels"):
        assert (tmp_path / "a" / sub / "c.nii.gz").read_bytes() == (tmp_path / "b" / sub / "c.nii.gz").read_bytes()
    other = generate_case(3, SyntheticConfig(seed=synth_cfg.seed + 1))
    same = generate_case(3, synth_cfg)
    assert other.image.shape != same.image.shape or not np.array_equal(other.image, same.image)


def _arrays(case):
    return case.image, case.labels, case.affine


def test_organs_are_on_the_patients_side_in_world_space(cases):
    for case in cases:
        cen = {o: _world_centroid(case.labels == o, case.affine) for o in L.ORGANS if (case.labels == o).any()}
        for o, sign in ((L.LIVER, 1), (L.KIDNEY_RIGHT, 1), (L.KIDNEY_LEFT, -1), (L.SPLEEN, -1)):
            if o in cen:  # RAS+: the patient's right is +x
                assert np.sign(cen[o][0]) == sign, (L.ORGANS[o], cen[o], case.notes)
        if len(cen) == 4 and not _cut(case):
            assert cen[L.KIDNEY_RIGHT][1] < cen[L.LIVER][1]  # kidneys posterior to the liver
            # offsets from the mean centroid stay within 4 sd of ANATOMY.md
            mean = np.mean(list(cen.values()), axis=0)
            for o, c in cen.items():
                off, sd = OFFSET_MM[o]
                assert np.all(np.abs(c - mean - np.array(off)) < 4 * np.array(sd) + 15), (L.ORGANS[o], c - mean)


def test_spine_lies_midway_between_the_kidneys(synth_cfg):
    """The kidneys lie about equally far either side of the vertebral column (Gray's Anatomy), so over many layouts
    their mean centroids sit symmetric about the spine (world x = 0 in the phantom). OFFSET_MM is measured from the
    organs' mean centroid, which the generator once put on the spine: the left kidney then lay 13 mm nearer to it
    than the right, against the vertebral body. Layouts only (no voxels painted), so 60 of them are cheap and the
    mean's standard error is under 1 mm."""
    layouts = [_draw_layout(i, synth_cfg) for i in range(60)]
    right, left = np.array([[lay.shapes[o].c[0] for o in (L.KIDNEY_RIGHT, L.KIDNEY_LEFT)] for lay in layouts]).T
    assert right.min() > 0 > left.max()  # RAS+: the patient's right is +x
    assert abs(right.mean() + left.mean()) / 2 < 3, (right.mean(), left.mean())


def test_organ_boxes_match_real_extents(cases):
    """Shape, not only volume: each organ's bounding box (mean over the uncut cases, canonical RAS mm) is within 20%
    of the real extents in docs/anatomy.md on every axis. An ellipsoid liver of the right volume fails this (its
    box was 48 mm too shallow and 30 mm too short), as does a spleen lying straight instead of along the wall."""
    boxes: dict[int, list[np.ndarray]] = {o: [] for o in L.ORGANS}
    for case in cases:
        if _cut(case):
            continue
        lab, aff, _ = to_canonical(case.labels, case.affine)
        sp = np.array(nifti.spacing(aff))
        for o in L.ORGANS:
            idx = np.argwhere(lab == o)
            if len(idx):
                boxes[o].append((idx.max(0) - idx.min(0) + 1) * sp)
    for o, found in boxes.items():
        assert len(found) >= 3, L.ORGANS[o]
        mean, real = np.mean(found, axis=0), np.array(EXTENT_MM[o], float)
        assert np.all(np.abs(mean - real) <= 0.2 * real), (L.ORGANS[o], mean.round(), real)


def _cut(case) -> bool:
    """Whether the field of view may cut organs (a cut end, a thin slab, a narrow in-plane field)."""
    return any(n.startswith("fov_") for n in case.notes)


def test_volumes_inside_anatomy_ranges(cases):
    for case in cases:
        ml = float(np.prod(nifti.spacing(case.affine))) / 1000
        cut = _cut(case)
        for o in L.ORGANS:
            vol = (case.labels == o).sum() * ml
            if vol == 0:
                assert f"missing_{L.ORGANS[o]}" in case.notes or cut
                continue
            _, _, lo, hi = VOLUME_ML[o]
            assert vol <= hi, (L.ORGANS[o], vol, case.notes)
            if not cut:
                assert vol >= lo, (L.ORGANS[o], vol, case.notes)


def _phase_range(cfg: SyntheticConfig, tissue: str, phase: int) -> tuple[float, float]:
    """The HU range a tissue may take in a phase before jitter: enhanced_hu is linear in time and dose, so its
    extremes lie at the corners of their ranges."""
    values = cfg.tissue_hu[tissue]
    if PHASES[phase] == "non_contrast":
        return values[0], values[0]
    corners = [enhanced_hu(values, t, d) for t in ENHANCEMENT_TIME[PHASES[phase]] for d in ENHANCEMENT_DOSE]
    return min(corners), max(corners)


def test_mean_hu_near_tissue_values(cases, synth_cfg):
    """Organ medians sit in the phase's range (contrast timing and dose vary); per-case jitter (domain
    randomisation) is allowed 3.5 sd."""
    tol = 3.5 * synth_cfg.tissue_jitter_hu + 8
    for case in cases:
        phase = next(i for i, p in enumerate(PHASES) if p in case.notes)
        img = case.image.astype(np.float32)
        for o, tissue in ((L.LIVER, "liver"), (L.SPLEEN, "spleen")):
            core = _eroded(case.labels == o)
            if core.sum() < 50:
                continue
            if "liver_lesion" in case.notes and o == L.LIVER:
                core &= img > _phase_range(synth_cfg, "liver_lesion", phase)[1] + 20
            lo, hi = _phase_range(synth_cfg, tissue, phase)
            assert lo - tol < np.median(img[core]) < hi + tol, (tissue, case.notes)
        for o in (L.KIDNEY_RIGHT, L.KIDNEY_LEFT):
            core = _eroded(case.labels == o)
            if core.sum() < 50 or "kidney_cyst" in case.notes:
                continue
            # a kidney is cortex around medulla: its median lies between the two configured values
            med = np.median(img[core])
            span = _phase_range(synth_cfg, "kidney_medulla", phase) + _phase_range(synth_cfg, "kidney_cortex", phase)
            assert min(span) - tol < med < max(span) + tol, (L.ORGANS[o], med, case.notes)


def test_contrast_phases_order_the_organs():
    """Portal-venous livers are brighter than unenhanced ones; arterial kidneys brighter than unenhanced."""
    cfg = SyntheticConfig(phase_weights=(1, 1, 1))
    by_phase: dict[str, list[float]] = {p: [] for p in PHASES}
    kid: dict[str, list[float]] = {p: [] for p in PHASES}
    for i in range(9):
        c = generate_case(i, cfg)
        phase = next(p for p in PHASES if p in c.notes)
        liver = _eroded(c.labels == L.LIVER)
        if liver.sum() >= 50:  # a thin slab may hold only a sliver of liver
            by_phase[phase].append(float(np.median(c.image[liver])))
        k = _eroded(c.labels == L.KIDNEY_LEFT) | _eroded(c.labels == L.KIDNEY_RIGHT)
        if k.sum() >= 50:
            kid[phase].append(float(np.percentile(c.image[k], 90)))
    assert all(by_phase.values()), by_phase
    assert np.mean(by_phase["portal_venous"]) > np.mean(by_phase["non_contrast"]) + 30
    assert np.mean(kid["arterial"]) > np.mean(kid["non_contrast"]) + 80


def test_kidneys_sit_in_fat_with_muscle_behind(cases):
    """Context that tells a kidney from a back muscle: fat round it (perirenal), and behind its medial half at
    least 20 mm of muscle (quadratus lumborum, posterior wall) before the skin. Checked in canonical RAS
    (posterior is decreasing j; medial is towards x = 0), whatever the storage."""
    for case in cases:
        canon, aff, _ = to_canonical(case.image.astype(np.float32), case.affine)
        lab, _, _ = to_canonical(case.labels, case.affine)
        sp = nifti.spacing(aff)
        for o in (L.KIDNEY_RIGHT, L.KIDNEY_LEFT):
            if (lab == o).sum() < 200:
                continue
            shell = ndimage.binary_dilation(lab == o, iterations=2) & (lab == 0)
            assert (canon[shell] < -30).mean() > 0.15, (L.ORGANS[o], case.notes)  # perirenal fat round it
            i, j, k = np.round(np.argwhere(lab == o).mean(0)).astype(int)
            medial = 1 if o == L.KIDNEY_LEFT else -1  # RAS: the left kidney lies at low i, the midline above it
            best = 0.0
            for shift_mm in (0, 5, 10, 15, 20):
                ii = i + medial * int(round(shift_mm / sp[0]))
                ray_img, ray_lab = canon[ii, j::-1, k], lab[ii, j::-1, k]  # towards posterior
                if not (ray_lab == o).any():
                    continue
                body = ray_img[int(np.argmax(np.cumsum(ray_lab == o) == (ray_lab == o).sum())) + 1:]
                end = int(np.argmax(body < -500)) if (body < -500).any() else len(body)
                best = max(best, float(((body[:end] > -20) & (body[:end] < 150)).sum() * sp[1]))
            assert best >= 20, (L.ORGANS[o], best, case.notes)


def _uncut_kidneys(cases):
    """Each kidney of at least 200 voxels in the cases whose field of view is whole, as (case, canonical RAS labels,
    spacing in mm, organ, medial sign): the midline lies towards -x of the right kidney and +x of the left."""
    for case in cases:
        if _cut(case):
            continue
        lab, aff, _ = to_canonical(case.labels, case.affine)
        for o, medial in ((L.KIDNEY_RIGHT, -1), (L.KIDNEY_LEFT, 1)):
            if (lab == o).sum() >= 200:
                yield case, lab, np.asarray(nifti.spacing(aff)), o, medial


def _hilum_direction(lab: np.ndarray, spacing: np.ndarray, organ: int) -> np.ndarray:
    """Unit (x, y) vector, canonical RAS mm, from a kidney's centre to the centre of its hilum: the gap between the
    kidney and its convex outline, over the axial slices of the kidney's middle third."""
    mask = lab == organ
    ks = np.nonzero(mask.any((0, 1)))[0]
    kidney, gap = [], []
    for k in range(ks[0] + len(ks) // 3, ks[0] + 2 * len(ks) // 3 + 1):
        pts = np.argwhere(mask[:, :, k])
        (i0, j0), (i1, j1) = pts.min(0), pts.max(0)
        grid = np.mgrid[i0:i1 + 1, j0:j1 + 1].reshape(2, -1).T
        in_hull = Delaunay(pts).find_simplex(grid) >= 0
        kidney.append(pts)
        gap.append(grid[in_hull & ~mask[grid[:, 0], grid[:, 1], k]])
    d = np.concatenate(gap).mean(0) * spacing[:2] - np.concatenate(kidney).mean(0) * spacing[:2]
    return d / np.linalg.norm(d)


def test_kidney_hilum_faces_anteromedially(cases):
    """The renal hilum opens towards the spine and the front (the kidney is turned about 30 degrees on its long axis;
    Gray's Anatomy), where the renal vessels and the pelvis leave it. A sign slip once turned it posteromedially."""
    checked = 0
    for case, lab, sp, o, medial in _uncut_kidneys(cases):
        x, y = _hilum_direction(lab, sp, o)
        assert x * medial > 0.5 and y > 0.1, (L.ORGANS[o], round(x * medial, 2), round(y, 2), case.notes)
        checked += 1
    assert checked >= 4


def test_kidneys_rest_on_the_back_muscles_through_fat(cases):
    """A kidney lies on psoas and quadratus lumborum through its posterior perirenal fat and the renal fascia (Gray's
    Anatomy), not muscle to kidney. The share of voxels under -30 HU 3-7 mm behind each uncut kidney (posterior of its
    centroid within 45 degrees of straight back, canonical RAS): 0.73-0.98 for the 8 uncut kidneys of cases 0-9 once
    the fat was laid over the muscles too, 0.55-0.77 before, when the muscles, drawn first, kept the fat out."""
    shares = []
    for case, lab, sp, o, medial in _uncut_kidneys(cases):
        image = to_canonical(case.image.astype(np.float32), case.affine)[0]
        kidney = lab == o
        d = ndimage.distance_transform_edt(~kidney, sampling=sp)
        shell = np.argwhere((d > 3) & (d <= 7))
        offset = (shell - np.argwhere(kidney).mean(0)) * sp
        angle = np.degrees(np.arctan2(offset[:, 1], medial * offset[:, 0]))  # 0 medial, 90 anterior, -90 posterior
        behind = shell[(angle >= -135) & (angle < -45)]
        shares.append(float((image[tuple(behind.T)] < -30).mean()))
    assert len(shares) >= 8
    assert min(shares) > 0.6, np.round(shares, 2)


def test_kidneys_lean_with_the_upper_pole_towards_the_midline(cases):
    """Each kidney lies obliquely in the coronal plane, its upper pole nearer the midline than its lower, along the
    psoas's edge (Gray's Anatomy; about 15 degrees from the vertical). The angle of the long axis (the first
    principal axis of its voxels, canonical RAS mm) from the vertical, towards the midline: positive in every uncut
    kidney, 10-25 degrees on average (10-22, mean 16, in these cases). The phantom's kidneys once stood upright (-7 to
    +5 degrees here, mean 0), which put the right upper pole against the liver's edge, where a real one lies medially,
    in fat, beside the crus."""
    angles = []
    for case, lab, sp, o, medial in _uncut_kidneys(cases):
        pts = np.argwhere(lab == o) * sp
        axis = np.linalg.eigh(np.cov(pts.T))[1][:, -1]
        axis = axis if axis[2] > 0 else -axis  # towards the upper pole
        angles.append(float(np.degrees(np.arctan2(medial * axis[0], axis[2]))))
        assert angles[-1] > 0, (L.ORGANS[o], round(angles[-1], 1), case.notes)
    assert len(angles) >= 8
    assert 10 < np.mean(angles) < 25, np.round(angles, 1)


def test_renal_sinus_is_fat_among_vessels_not_a_pool_of_fat(canvases):
    """Only 28-31% of the renal sinus is fat (Zhang et al., Front Endocrinol 2023); the rest is calyces and the
    branches of the renal vessels. Every phantom sinus was a uniform fat ring round the pelvis (73-98% of its voxels
    under -20 HU in cases 0-9), a cue no real kidney gives; the network learnt to draw kidneys out from it, and drew
    phantoms with a small sinus too small. Checked on the painted anatomy (the generator's grid, before the scanner's
    blur, which a soft PSF spreads over the 5 mm lobules: none of one sinus under -20 HU after it, 0.019 of the
    next), outside the pelvis: 0.16-0.41 in cases 0-9."""
    checked = 0
    for lay, cv in canvases:
        x, y, z = lay.grid.coords(tuple(slice(0, n) for n in lay.grid.shape))
        for o in (L.KIDNEY_RIGHT, L.KIDNEY_LEFT):
            sinus = np.broadcast_to(lay.shapes[o].sinus(x, y, z), cv.lab.shape)
            m = (cv.lab == o) & (sinus < 1) & (sinus >= 0.55)
            if m.sum() < 30:
                continue
            dark = float((cv.vol[m] < -20).mean())
            assert 0.1 < dark < 0.55, (L.ORGANS[o], round(dark, 2), lay.notes)  # some fat, never a pool of it
            checked += 1
    assert checked >= 10


def test_spleen_stays_outside_gerotas_fascia(cases, synth_cfg):
    """The kidney lies in its fat inside Gerota's fascia, behind the peritoneum; the spleen meets it across fascia and
    fat (Gray's Anatomy), not voxel to voxel. Painted over the fat, it took 4-19% of the thinnest fat shell a left
    kidney can have (1.08 of its radii) in cases 0-9, 6% or more in nine of them. Hollowed there, it keeps its drawn
    volume (the old spleen kept 87-95% of it in the uncut cases)."""
    checked = 0
    for i, case in enumerate(cases):
        lay = _draw_layout(i, synth_cfg)
        lab, aff, _ = to_canonical(case.labels, case.affine)  # the generator's own grid is RAS: this undoes LPS storage
        x, y, z = lay.grid.coords(tuple(slice(0, n) for n in lay.grid.shape))
        if (lab == L.KIDNEY_LEFT).sum() >= 200:
            v = np.broadcast_to(lay.shapes[L.KIDNEY_LEFT].value(x, y, z), lab.shape)
            shell = (v >= 1) & (v < 1.08) & (lab != L.KIDNEY_LEFT)
            taken = float((lab[shell] == L.SPLEEN).mean())
            assert taken <= 0.05, (round(taken, 3), case.notes)
            checked += 1
        if not _cut(case):
            ml = float(np.prod(nifti.spacing(aff))) / 1000
            drawn = _organ_volume_ml(lay.shapes[L.SPLEEN])
            assert (lab == L.SPLEEN).sum() * ml >= 0.9 * drawn, (round((lab == L.SPLEEN).sum() * ml), round(drawn), case.notes)
    assert checked >= 6


def test_spleen_lies_in_front_of_the_back_muscles(canvases):
    """The spleen lies against the diaphragm in front of the posterior abdominal wall (Gray's Anatomy), never in
    erector spinae, quadratus lumborum or psoas. Painted over them, it took 7-456 of its voxels from them in
    cases 2, 3 and 5 (up to 3.9% of it; 20% in synth_033, a spleen reaching behind the left kidney to the spine),
    and the muscles were gone there. On the painted anatomy: no spleen voxel where a back muscle was painted."""
    for lay, cv in canvases:
        spleen = cv.lab == L.SPLEEN
        assert cv.back_muscle.sum() > 1000, lay.notes  # the muscles are there to be kept out of
        assert not (spleen & cv.back_muscle).any(), (int((spleen & cv.back_muscle).sum()), lay.notes)


def _rib_in_kidney_outline(img: np.ndarray, lab: np.ndarray, aff: np.ndarray, organ: int) -> int:
    """Bone-bright voxels (> 300 HU: cortical bone is drawn at 400-900) inside a kidney's outline on its own slices
    (the in-plane closing of its mask), more than 50 mm from the midline: beyond the transverse processes' tips (12 +
    22..32 mm) and the aorta's branches into the hilum, so a rib. Arrays and affine in canonical RAS."""
    mask = lab == organ
    outline = ndimage.binary_closing(np.pad(mask, 3), np.ones((5, 5, 1), bool))[3:-3, 3:-3, 3:-3]
    x_mm = aff[0, 0] * np.arange(mask.shape[0]) + aff[0, 3]  # the phantom's world x is 0 at the spine
    lateral = (np.abs(x_mm) > 50)[:, None, None]
    return int(((img > 300) & outline & ~mask & lateral).sum())


def test_ribs_pass_behind_the_kidneys(cases):
    """The lower ribs run from the spine backwards and outwards to their angles, behind the kidneys with the
    quadratus lumborum and the diaphragm between (Gray's Anatomy), so no rib ever crosses a kidney. The posterior
    arc once ran at the spinal canal's depth, level with the kidneys, and crossed 36 of the 39 kidneys of the default
    seed's phantoms 0-19."""
    checked = 0
    for case in cases:
        img, aff, _ = to_canonical(case.image.astype(np.float32), case.affine)  # once per case, both kidneys
        lab = to_canonical(case.labels, case.affine)[0]
        for o in (L.KIDNEY_RIGHT, L.KIDNEY_LEFT):
            if (lab == o).sum() < 200:
                continue
            assert _rib_in_kidney_outline(img, lab, aff, o) == 0, (L.ORGANS[o], case.notes)
            checked += 1
    assert checked >= 10


def _eroded(mask):
    return ndimage.binary_erosion(mask, iterations=2)


def _air_to_body_edge(image: np.ndarray) -> float:
    """Median 10-90% rise (voxels) from air (-1000 HU) to fat (-100) across the body's outline, along the rows
    through the middle of its mid slice, on both sides: the in-plane blur's width."""
    sl = image[:, :, image.shape[2] // 2].astype(float)
    rows = np.flatnonzero((sl > -500).any(0))
    mid = (rows[0] + rows[-1]) // 2
    widths = []
    for y in range(mid - 3, mid + 4):
        for prof in (sl[:, y], sl[::-1, y]):
            i = int(np.argmax(prof > -500))
            seg = prof[max(i - 6, 0): i + 6]

            def cross(level: float) -> float:
                k = int(np.argmax(seg > level))
                return k - 1 + (level - seg[k - 1]) / (seg[k] - seg[k - 1])
            widths.append(cross(-190.0) - cross(-910.0))
    return float(np.median(widths))


def test_in_plane_blur_varies_from_scan_to_scan(cases):
    """Reconstruction kernels and storage grids make some scans sharp and some soft (the bundled real CT is kept at
    3 mm). Every phantom had the same sharp edge (10-90% rise 1.41-1.52 voxels in cases 0-9; 1.5-2.65 with sigma
    0.6-1.1; 1.6-4.0 now), and the network read edges sharper than real scans': blurring the real CT cost its
    kidneys up to 0.11 Dice. Measured across the body's outline, where the step is known; cases whose field of view
    cuts the body are left out (the reconstruction circle's edge is not blurred)."""
    widths = [_air_to_body_edge(to_canonical(c.image, c.affine)[0]) for c in cases if "fov_cut_inplane" not in c.notes]
    assert len(widths) >= 5
    assert min(widths) > 1.2 and max(widths) < 4.5, widths  # sigma 0.6-1.6 voxels: 1.54-4.1
    assert max(widths) - min(widths) > 1.0 and max(widths) > 3.0, widths


def test_slice_profile_is_a_share_of_the_slice_whatever_its_thickness(synth_cfg):
    """A slice averages the body over its thickness (a sensitivity profile about as wide as the slice), so an edge
    along z is spread over a share of a slice, thin or thick. The phantom blurred every scan by 1.2 mm along z, a
    quarter of a 5 mm slice, which left a painted edge a clean step between two slices. Measured through the scanner
    phase on a canvas that is air below its middle slice and bone above: how far the two slices either side of the
    edge are from the step, in slices (cases 0-9: 0.05-0.20; with the 1.2 mm, 0.002-0.006 on slices over 4 mm)."""
    thick = []
    for i in range(N):
        lay = _draw_layout(i, synth_cfg)
        cv = _Canvas(lay)
        nx, ny, nz = lay.grid.shape
        cv.vol[:, :, nz // 2:] = 1000.0  # outside the tissue range: no texture or streaks, only blur and noise
        prof = _scanner(cv, lay, synth_cfg)[nx // 2 - 5:nx // 2 + 5, ny // 2 - 5:ny // 2 + 5].mean((0, 1))
        near = prof[nz // 2 - 2:nz // 2 + 2]
        spread = float(np.abs(near - np.where(np.arange(4) < 2, -1000.0, 1000.0)).sum() / 2000)
        assert 0.04 < spread < 0.3, (i, round(spread, 3), lay.grid.spacing[2])
        thick.append(lay.grid.spacing[2] > 4.0)
    assert any(thick)


def test_configured_variety_occurs():
    cfg = SyntheticConfig(lps_fraction=0.5, float32_fraction=0.5, pathology_fraction=0.5, fov_cut_fraction=0.3,
                          phase_weights=(1, 1, 1))
    cases = [generate_case(i, cfg) for i in range(16)]
    axes = {nifti.axcodes(c.affine) for c in cases}
    assert axes == {"RAS", "LPS"}
    assert {c.image.dtype for c in cases} == {np.dtype(np.int16), np.dtype(np.float32)}
    spacings = {nifti.spacing(c.affine) for c in cases}
    assert len(spacings) == len(cases)
    for sp in spacings:
        assert cfg.spacing_inplane[0] <= sp[0] <= cfg.spacing_inplane[1]
        assert cfg.slice_thickness[0] <= sp[2] <= cfg.slice_thickness[1]
    notes = {n for c in cases for n in c.notes}
    assert set(PHASES) <= notes
    assert notes & {"liver_lesion", "kidney_cyst", "enlarged_spleen", "missing_kidney_left", "missing_kidney_right"}
    assert notes & {"fov_cut_superior", "fov_cut_inferior"}
    assert {"fov_slab", "fov_cut_inplane"} <= notes


def test_lps_storage_is_the_same_patient(synth_cfg):
    """An LPS-stored case, brought to RAS, has its liver at high x indices like any RAS case."""
    case = next(c for c in (generate_case(i, synth_cfg) for i in range(N)) if "stored_LPS" in c.notes)
    canon, aff, _ = to_canonical(case.labels, case.affine)
    assert nifti.axcodes(aff) == "RAS"
    liver_x = np.argwhere(canon == L.LIVER)[:, 0].mean()
    spleen_x = np.argwhere(canon == L.SPLEEN)[:, 0].mean()
    assert liver_x > spleen_x


def test_scanner_resolution_grids_are_clinical():
    """`resolution: scanner` lays out 512 x 512 slices of 0.7-0.9 mm pixels, 200-400 of them, 1-3 mm thick (the grid
    only: a full case is 80 million voxels, which bench/scanner_resolution.py generates and times)."""
    from abdoseg.synthetic import SCANNER_PIXEL_MM, SCANNER_SLICE_MM, _draw_layout

    cfg = SyntheticConfig(resolution="scanner")
    for i in range(8):
        lay = _draw_layout(i, cfg)
        g = lay.grid
        assert g.shape[:2] == (512, 512)
        assert SCANNER_PIXEL_MM[0] <= g.spacing[0] == g.spacing[1] <= SCANNER_PIXEL_MM[1]
        assert SCANNER_SLICE_MM[0] <= g.spacing[2] <= SCANNER_SLICE_MM[1]
        assert 200 <= g.shape[2] <= 400 and g.shape[2] * g.spacing[2] <= 600.0  # a chest-to-pelvis scan at most
        assert g.origin[2] + (g.shape[2] - 1) * g.spacing[2] <= lay.z_hi  # from the top of the abdomen downwards
    coarse = _draw_layout(0, SyntheticConfig()).grid
    assert SyntheticConfig().spacing_inplane[0] <= coarse.spacing[0] <= SyntheticConfig().spacing_inplane[1]  # unchanged


def test_unknown_resolution_is_refused():
    with pytest.raises(ValueError, match="resolution"):
        SyntheticConfig.from_params({"resolution": "fine"})
