"""A DICOM series the test writes (shuffled on disk, LPS geometry, rescaled pixels) reads back with its geometry."""

import numpy as np
import pydicom
import pytest
from pydicom.dataset import FileDataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

from abdoseg import nifti
from abdoseg.dicom import read_series
from abdoseg.preprocess import to_canonical


def write_series(folder, hu: np.ndarray, row_dir, col_dir, spacing, origin, rng) -> None:
    """hu indexed [column i, row j, slice k]; slice k sits at origin + k * spacing[2] * (row_dir x col_dir) (LPS mm)."""
    folder.mkdir(parents=True, exist_ok=True)
    normal = np.cross(row_dir, col_dir)
    series, study = generate_uid(), generate_uid()
    order = rng.permutation(hu.shape[2])
    for n, k in enumerate(order):
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = CTImageStorage
        meta.MediaStorageSOPInstanceUID = generate_uid()
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds = FileDataset(str(folder / f"x{n:03d}.dcm"), {}, file_meta=meta, preamble=b"\0" * 128)
        ds.SOPClassUID, ds.SOPInstanceUID = CTImageStorage, meta.MediaStorageSOPInstanceUID
        ds.SeriesInstanceUID, ds.StudyInstanceUID, ds.Modality = series, study, "CT"
        ds.InstanceNumber = int(rng.integers(1000))  # meaningless on purpose
        ds.ImageOrientationPatient = [float(v) for v in (*row_dir, *col_dir)]
        ds.ImagePositionPatient = [float(v) for v in origin + k * spacing[2] * normal]
        ds.PixelSpacing = [float(spacing[1]), float(spacing[0])]  # row spacing, column spacing
        ds.SliceThickness = float(spacing[2])
        ds.Rows, ds.Columns = hu.shape[1], hu.shape[0]
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
        ds.RescaleSlope, ds.RescaleIntercept = 1, -1024
        ds.PixelData = (hu[:, :, k].T + 1024).astype(np.uint16).tobytes()
        ds.save_as(folder / f"x{n:03d}.dcm", enforce_file_format=True)
    (folder / "README.txt").write_text("not a DICOM file")


@pytest.mark.parametrize("oblique", [False, True])
def test_series_round_trips_with_geometry(tmp_path, oblique):
    rng = np.random.default_rng(0)
    hu = rng.integers(-1000, 1500, (24, 20, 9)).astype(np.int16)
    if oblique:
        a = np.deg2rad(12)
        row_dir, col_dir = np.array([np.cos(a), np.sin(a), 0.0]), np.array([-np.sin(a), np.cos(a), 0.0])
    else:
        row_dir, col_dir = np.array([1.0, 0.0, 0.0]), np.array([0.0, 1.0, 0.0])
    spacing, origin = np.array([0.8, 0.7, 2.5]), np.array([-120.0, -90.0, 310.0])
    write_series(tmp_path / "case", hu, row_dir, col_dir, spacing, origin, rng)
    array, affine = read_series(tmp_path / "case")
    np.testing.assert_array_equal(array, hu)
    # every voxel lands where DICOM's own definition puts it (LPS), expressed in RAS (x and y negated)
    for i, j, k in [(0, 0, 0), (23, 0, 0), (0, 19, 0), (5, 7, 8)]:
        lps = origin + i * spacing[0] * row_dir + j * spacing[1] * col_dir + k * spacing[2] * np.cross(row_dir, col_dir)
        ras = affine @ [i, j, k, 1]
        np.testing.assert_allclose(ras[:3], lps * [-1, -1, 1], atol=1e-6)
    assert np.allclose(nifti.spacing(affine), spacing)


def test_patients_left_stays_left(tmp_path):
    """A marker on the patient's left (+x in LPS) ends up at low x in the RAS canonical array."""
    hu = np.full((30, 20, 4), -1000, np.int16)
    hu[25:29, 8:12, :] = 60  # column index grows towards the patient's left in a standard axial series
    write_series(tmp_path / "c", hu, np.array([1.0, 0, 0]), np.array([0, 1.0, 0]), np.array([1.0, 1.0, 3.0]),
                 np.array([-15.0, -10.0, 0.0]), np.random.default_rng(1))
    array, affine = read_series(tmp_path / "c")
    assert nifti.axcodes(affine) == "LPS"
    canon, canon_aff, _ = to_canonical(array, affine)
    marker_x = np.argwhere(canon > 0)[:, 0].mean()
    assert marker_x < canon.shape[0] / 2  # RAS: low x index is the patient's left
    assert (canon_aff @ [marker_x, 0, 0, 1])[0] < 0  # and in world space x < 0 is the patient's left


def test_bad_series_are_clear_errors(tmp_path):
    rng = np.random.default_rng(2)
    hu = np.zeros((8, 8, 5), np.int16)
    write_series(tmp_path / "a", hu, np.array([1.0, 0, 0]), np.array([0, 1.0, 0]), np.ones(3), np.zeros(3), rng)
    middle = next(p for p in (tmp_path / "a").glob("*.dcm") if float(pydicom.dcmread(p).ImagePositionPatient[2]) == 2.0)
    middle.unlink()  # a missing slice in the middle of the stack
    with pytest.raises(ValueError, match="irregular slice spacing"):
        read_series(tmp_path / "a")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no DICOM image slices"):
        read_series(tmp_path / "empty")
    write_series(tmp_path / "two", hu, np.array([1.0, 0, 0]), np.array([0, 1.0, 0]), np.ones(3), np.zeros(3), rng)
    write_series(tmp_path / "two" / "more", hu, np.array([1.0, 0, 0]), np.array([0, 1.0, 0]), np.ones(3), np.zeros(3), rng)
    with pytest.raises(ValueError, match="holds 2 series"):
        read_series(tmp_path / "two")
