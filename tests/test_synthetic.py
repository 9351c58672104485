"""The built-in phantom: deterministic, anatomically placed, realistic volumes and Hounsfield units, varied storage."""

import numpy as np
import pytest

from abdoseg import ingest, nifti
from abdoseg import labels as L
from abdoseg.preprocess import to_canonical
from abdoseg.synthetic import OFFSET_MM, VOLUME_ML, SyntheticConfig, generate_case

N = 10


@pytest.fixture(scope="module")
def cases(synth_cfg):
    return [generate_case(i, synth_cfg) for i in range(N)]


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
        assert cen[L.LIVER][0] > 0 and cen[L.SPLEEN][0] < 0, case.notes  # RAS+: right is +x
        if L.KIDNEY_RIGHT in cen:
            assert cen[L.KIDNEY_RIGHT][0] > 0, case.notes
        if L.KIDNEY_LEFT in cen:
            assert cen[L.KIDNEY_LEFT][0] < 0, case.notes
        if L.KIDNEY_RIGHT in cen and L.KIDNEY_LEFT in cen:
            assert cen[L.KIDNEY_RIGHT][1] < cen[L.LIVER][1]  # kidneys posterior to the liver
            # offsets from the mean centroid stay within 4 sd of ANATOMY.md
            mean = np.mean(list(cen.values()), axis=0)
            for o, c in cen.items():
                off, sd = OFFSET_MM[o]
                assert np.all(np.abs(c - mean - np.array(off)) < 4 * np.array(sd) + 15), (L.ORGANS[o], c - mean)


def test_volumes_inside_anatomy_ranges(cases):
    for case in cases:
        ml = float(np.prod(nifti.spacing(case.affine))) / 1000
        cut = any(n.startswith("fov_cut") for n in case.notes)
        for o in L.ORGANS:
            vol = (case.labels == o).sum() * ml
            if vol == 0:
                assert f"missing_{L.ORGANS[o]}" in case.notes
                continue
            _, _, lo, hi = VOLUME_ML[o]
            assert vol <= hi, (L.ORGANS[o], vol, case.notes)
            if not cut:
                assert vol >= lo, (L.ORGANS[o], vol, case.notes)


def test_mean_hu_near_tissue_values(cases, synth_cfg):
    for case in cases:
        phase = 1 if "portal_venous" in case.notes else 0
        img = case.image.astype(np.float32)
        for o, tissue in ((L.LIVER, "liver"), (L.SPLEEN, "spleen")):
            core = _eroded(case.labels == o)
            if "liver_lesion" in case.notes and o == L.LIVER:
                core &= img > synth_cfg.tissue_hu["liver_lesion"][phase] + 20
            assert abs(np.median(img[core]) - synth_cfg.tissue_hu[tissue][phase]) < 20, (tissue, case.notes)
        for o in (L.KIDNEY_RIGHT, L.KIDNEY_LEFT):
            if not (case.labels == o).any() or "kidney_cyst" in case.notes:
                continue
            # a kidney is cortex around medulla: its median lies between the two configured values
            med = np.median(img[_eroded(case.labels == o)])
            lo, hi = sorted((synth_cfg.tissue_hu["kidney_medulla"][phase], synth_cfg.tissue_hu["kidney_cortex"][phase]))
            assert lo - 20 < med < hi + 20, (L.ORGANS[o], med, case.notes)


def _eroded(mask):
    from scipy import ndimage

    return ndimage.binary_erosion(mask, iterations=2)


def test_configured_variety_occurs():
    cfg = SyntheticConfig(lps_fraction=0.5, float32_fraction=0.5, pathology_fraction=0.5, fov_cut_fraction=0.3)
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
    assert {"portal_venous", "non_contrast"} <= notes
    assert notes & {"liver_lesion", "kidney_cyst", "enlarged_spleen", "missing_kidney_left", "missing_kidney_right"}
    assert notes & {"fov_cut_superior", "fov_cut_inferior"}


def test_lps_storage_is_the_same_patient(synth_cfg):
    """An LPS-stored case, brought to RAS, has its liver at high x indices like any RAS case."""
    case = next(c for c in (generate_case(i, synth_cfg) for i in range(N)) if "stored_LPS" in c.notes)
    canon, aff, _ = to_canonical(case.labels, case.affine)
    assert nifti.axcodes(aff) == "RAS"
    liver_x = np.argwhere(canon == L.LIVER)[:, 0].mean()
    spleen_x = np.argwhere(canon == L.SPLEEN)[:, 0].mean()
    assert liver_x > spleen_x


def test_scanner_resolution_grids_are_clinical():
    """`resolution: scanner` lays out 512 x 512 slices of 0.7-0.9 mm pixels, 200-400 of them, 1-3 mm thick, at most
    600 mm (the grid only: a whole case is about 80 million voxels, which bench/scanner_resolution.py generates)."""
    from abdoseg.synthetic import SCANNER_PIXEL_MM, SCANNER_SLICE_MM, _scan_grid

    cfg = SyntheticConfig(resolution="scanner")
    for i in range(20):
        g = _scan_grid(np.random.default_rng(i), cfg, a=170.0, b=120.0, z_lo=-150.0, z_hi=120.0)
        assert g.shape[:2] == (512, 512)
        assert SCANNER_PIXEL_MM[0] <= g.spacing[0] == g.spacing[1] <= SCANNER_PIXEL_MM[1]
        assert SCANNER_SLICE_MM[0] <= g.spacing[2] <= SCANNER_SLICE_MM[1]
        assert 200 <= g.shape[2] <= 400 and g.shape[2] * g.spacing[2] <= 600.0
        assert g.origin[2] + (g.shape[2] - 1) * g.spacing[2] < 120.0  # from the top of the abdomen downwards
    coarse = _scan_grid(np.random.default_rng(0), SyntheticConfig(), a=170.0, b=120.0, z_lo=-150.0, z_hi=120.0)
    assert SyntheticConfig().spacing_inplane[0] <= coarse.spacing[0] <= SyntheticConfig().spacing_inplane[1]


def test_unknown_resolution_is_refused():
    with pytest.raises(ValueError, match="resolution"):
        SyntheticConfig.from_params({"resolution": "fine"})
