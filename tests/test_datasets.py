"""Real-dataset sources, offline: each source's exact layout, built tiny here and served from 127.0.0.1.

Each fixture case puts the source's own IDs for liver and right kidney on the patient's right (+x in RAS world),
left kidney and spleen on the left, plus one class we do not segment; after the download step every organ must be
on its side with our IDs, whatever the storage orientation, and the unsegmented class must be background.
"""

from __future__ import annotations

import gzip
import io
import tarfile
import zipfile
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from abdoseg import fetch as fetch_module
from abdoseg import labels as L
from abdoseg import files, nifti, sources
from abdoseg.archive import UnsafeArchiveError, extract, open_archive
from abdoseg.ingest import ingest
from abdoseg.manifest import read_manifest
from abdoseg.evaluate import evaluate_case
from abdoseg.fetch import ChecksumError, DownloadError, fetch, zenodo_md5
from abdoseg.split import split_cases
from abdoseg import real_ct
from http_server import FileServer

@pytest.fixture(autouse=True)
def no_request_pacing(monkeypatch):
    """127.0.0.1 has no rate limit: range reads need not wait a second between requests here."""
    monkeypatch.setattr(fetch_module, "RANGE_REQUEST_INTERVAL_S", 0.0)


SHAPE = (20, 16, 10)
SPACING = (9.0, 9.0, 12.0)
# boxes in RAS voxel indices (i grows towards the patient's right, j anterior, k superior)
BOXES = {L.LIVER: np.s_[12:18, 9:14, 3:8], L.KIDNEY_RIGHT: np.s_[13:17, 2:6, 2:6],
         L.KIDNEY_LEFT: np.s_[3:7, 2:6, 2:6], L.SPLEEN: np.s_[2:7, 9:13, 4:8]}
OTHER = np.s_[8:11, 8:12, 3:7]  # a class no target organ maps from (stomach, say)

# each source's own IDs for our organs (from its documentation), and one ID of a class we do not segment
SOURCE_IDS = {
    "amos": ({L.LIVER: 6, L.KIDNEY_RIGHT: 2, L.KIDNEY_LEFT: 3, L.SPLEEN: 1}, 7),
    "flare22": ({L.LIVER: 1, L.KIDNEY_RIGHT: 2, L.KIDNEY_LEFT: 13, L.SPLEEN: 3}, 11),
    "word": ({L.LIVER: 1, L.KIDNEY_RIGHT: 4, L.KIDNEY_LEFT: 3, L.SPLEEN: 2}, 5),
    "btcv": ({L.LIVER: 6, L.KIDNEY_RIGHT: 2, L.KIDNEY_LEFT: 3, L.SPLEEN: 1}, 7),
    "msd_spleen": ({L.SPLEEN: 1}, None),
}


def _case(index: int, ids: dict[int, int], other: int | None, axcodes: str):
    """(image, source labels, our expected labels, affine) stored `axcodes`; `index` varies the HU a little."""
    ours = np.zeros(SHAPE, np.uint8)
    theirs = np.zeros(SHAPE, np.int16)
    image = np.full(SHAPE, -1000, np.int16)
    image[1:19, 1:15, :] = 20 + index
    for organ, box in BOXES.items():
        image[box] = 60 + 10 * organ
        if organ in ids:
            ours[box], theirs[box] = organ, ids[organ]
    if other is not None:
        theirs[OTHER] = other
    affine = np.diag([*SPACING, 1.0])
    affine[:3, 3] = [-90.0, -70.0, 40.0 * index]
    if axcodes == "LPS":  # the same patient stored with i and j reversed
        image, theirs, ours = (a[::-1, ::-1].copy() for a in (image, theirs, ours))
        flip = np.diag([-1.0, -1.0, 1.0, 1.0])
        flip[:3, 3] = [SHAPE[0] - 1, SHAPE[1] - 1, 0]
        affine = affine @ flip
    assert nifti.axcodes(affine) == axcodes
    return image, theirs, ours, affine


def _nii(array: np.ndarray, affine: np.ndarray) -> bytes:
    return gzip.compress(nib.Nifti1Image(array, affine).to_bytes(), mtime=0)


def _zip(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return buf.getvalue()


def _tar(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _split_folder(i: int) -> str:
    return ["Tr", "Tr", "Val", "Ts"][(i - 1) % 4]


# source -> (case index, number of cases) -> (case ID, image path, label path), as each dataset names them
LAYOUTS = {
    "amos": lambda i, n: (f"amos_{i:04d}", *(f"amos22/{kind}{'Tr' if i <= n // 2 else 'Va'}/amos_{i:04d}.nii.gz"
                                            for kind in ("images", "labels"))),
    "flare22": lambda i, n: (f"FLARE22_Tr_{i:04d}", f"FLARE22Train/images/FLARE22_Tr_{i:04d}_0000.nii.gz",
                             f"FLARE22Train/labels/FLARE22_Tr_{i:04d}.nii.gz"),
    "word": lambda i, n: (f"word_{i:04d}", *(f"WORD-V0.1.0/{kind}{_split_folder(i)}/word_{i:04d}.nii.gz"
                                            for kind in ("images", "labels"))),
    "btcv": lambda i, n: (f"btcv_{i:04d}", f"RawData/Training/img/img{i:04d}.nii.gz",
                          f"RawData/Training/label/label{i:04d}.nii.gz"),
    "msd_spleen": lambda i, n: (f"spleen_{i * 3}", f"Task09_Spleen/imagesTr/spleen_{i * 3}.nii.gz",
                                f"Task09_Spleen/labelsTr/spleen_{i * 3}.nii.gz"),
}


def _layout(source: str, n: int = 4) -> tuple[dict[str, bytes], dict[str, np.ndarray]]:
    """The files of a tiny `source` dataset in its own layout, and our expected labels per case ID."""
    files, expected = {}, {}
    if source == "totalsegmentator":
        files["meta.csv"] = ("\ufeffimage_id;age;gender;institute;study_type;split\n" + "".join(
            f"s{i:04d};60;f;A;ct abdomen;{['train', 'train', 'val', 'test'][i % 4]}\n" for i in range(1, n + 1))).encode()
        names = {L.LIVER: "liver", L.KIDNEY_RIGHT: "kidney_right", L.KIDNEY_LEFT: "kidney_left", L.SPLEEN: "spleen"}
        for i in range(1, n + 1):
            image, _, ours, affine = _case(i, {o: 1 for o in L.ORGANS}, None, "LPS" if i % 2 else "RAS")
            files[f"s{i:04d}/ct.nii.gz"] = _nii(image, affine)
            for organ, name in names.items():
                files[f"s{i:04d}/segmentations/{name}.nii.gz"] = _nii((ours == organ).astype(np.uint8), affine)
            files[f"s{i:04d}/segmentations/stomach.nii.gz"] = _nii(np.zeros(SHAPE, np.uint8), affine)
            expected[f"s{i:04d}"] = ours
        return files, expected
    ids, other = SOURCE_IDS[source]
    for i in range(1, n + 1):
        image, theirs, ours, affine = _case(i, ids, other, "LPS" if i % 2 else "RAS")
        img, lab = _nii(image, affine), _nii(theirs, affine)
        case, image_path, label_path = LAYOUTS[source](i, n)
        files[image_path], files[label_path] = img, lab
        if source == "msd_spleen":
            files[f"Task09_Spleen/imagesTr/._{case}.nii.gz"] = b"\0\5\26\7 macOS resource fork"
        expected[case] = ours
    if source == "amos":  # an MRI case (id above 500) and dataset.json: neither is a CT case
        image, theirs, _, affine = _case(9, ids, other, "RAS")
        files["amos22/imagesTr/amos_0540.nii.gz"], files["amos22/labelsTr/amos_0540.nii.gz"] = _nii(image, affine), _nii(theirs, affine)
        files["amos22/dataset.json"] = b"{}"
    if source == "btcv":  # test images have no labels
        files["RawData/Testing/img/img0061.nii.gz"] = files["RawData/Training/img/img0001.nii.gz"]
    if source == "msd_spleen":
        files["Task09_Spleen/imagesTs/spleen_1.nii.gz"] = files["Task09_Spleen/imagesTr/spleen_3.nii.gz"]
        files["Task09_Spleen/dataset.json"] = b"{}"
    return files, expected


def _params(source: str, **extra) -> dict:
    return {"source": source, "max_cases": None, "cases": [], "on_bad_case": "fail", **extra}


def _check(raw: Path, expected: dict[str, np.ndarray], source: str) -> None:
    """Our labels equal the expected ones voxel for voxel, and each organ sits on the patient's side in world space."""
    manifest = read_manifest(raw / "manifest.tsv")
    assert sorted(manifest["case"]) == sorted(expected)
    for row in manifest.itertuples():
        lab_img = nifti.load(raw / "labels" / f"{row.case}.nii.gz")
        lab = np.asarray(lab_img.dataobj)
        np.testing.assert_array_equal(lab, expected[row.case], err_msg=f"{source} {row.case}")
        world_x = {o: (lab_img.affine[:3, :3] @ np.argwhere(lab == o).mean(0) + lab_img.affine[:3, 3])[0]
                   for o in L.ORGANS if (lab == o).any()}
        if L.KIDNEY_RIGHT in world_x:
            assert world_x[L.KIDNEY_RIGHT] > 0 > world_x[L.KIDNEY_LEFT], (source, row.case, world_x)
            assert world_x[L.LIVER] > 0, (source, row.case)
        assert world_x[L.SPLEEN] < 0, (source, row.case)
        assert row.source == source and row.shape == "x".join(map(str, SHAPE)) and row.axes in ("RAS", "LPS")
        assert row.spacing == "x".join(f"{s:.4g}" for s in SPACING)
        assert row.sha256 == files.sha256(raw / "images" / f"{row.case}.nii.gz")
        assert row.annotated.split(",") == sources.SOURCES[source].annotated if source in sources.SOURCES else True


# word and btcv have no public URL (a drive link, a Synapse login): served here as a lab's own copy (data.url)
REMOTE = ["totalsegmentator", "amos", "flare22", "msd_spleen", "word", "btcv"]
OWN_COPIES = {"word": "WORD-V0.1.0.zip", "btcv": "RawData.zip"}


def _archive(source: str) -> tuple[str, bytes, dict[str, np.ndarray]]:
    """(archive file name as the source publishes it, archive bytes, expected labels) of a tiny `source`."""
    files, expected = _layout(source)
    url = sources.SOURCES[source].url
    name = url.split("?")[0].rsplit("/", 1)[-1] if url else OWN_COPIES[source]
    return name, _tar(files) if name.endswith(".tar") else _zip(files), expected


@pytest.mark.parametrize("source", REMOTE)
@pytest.mark.parametrize("ranges", [True, False])
def test_remote_sources_land_every_organ_on_its_side(tmp_path, source, ranges):
    """Each served with and without Range support, the first long response cut short (a dropped connection)."""
    name, blob, expected = _archive(source)
    with FileServer({f"/{name}": blob}, ranges=ranges, break_after=1000, breaks=1) as server:
        params = _params(source, url=server.url(f"/{name}"), md5=md5sum_bytes(blob), max_cases=3)
        ingest(tmp_path / "raw", params, downloads=tmp_path / "downloads")
    _check(tmp_path / "raw", {k: expected[k] for k in sorted(expected)[:3]}, source)
    # a zip on a server with ranges is read member by member; otherwise the archive comes whole, md5-checked
    whole = any((tmp_path / "downloads" / source).rglob(name))
    assert whole == (not ranges or source == "msd_spleen")


def md5sum_bytes(data: bytes) -> str:
    import hashlib

    return hashlib.md5(data).hexdigest()


@pytest.mark.parametrize("source", ["word", "btcv"])
def test_folder_sources_land_every_organ_on_its_side(tmp_path, source):
    files, expected = _layout(source)
    for name, data in files.items():
        (tmp_path / "data" / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "data" / name).write_bytes(data)
    with pytest.raises(ValueError, match="data.folder"):
        ingest(tmp_path / "raw", _params(source), downloads=tmp_path / "downloads")
    ingest(tmp_path / "raw", _params(source, folder=str(tmp_path / "data")), downloads=tmp_path / "downloads")
    _check(tmp_path / "raw", expected, source)
    if source == "word":  # the folder names are WORD's official split
        split = split_cases(read_manifest(tmp_path / "raw" / "manifest.tsv"), {"use_official": True})
        assert split == {"train": ["word_0001", "word_0002"], "val": ["word_0003"], "test": ["word_0004"]}


@pytest.mark.parametrize("source", REMOTE)
def test_wrong_archive_checksum_fails_by_name(tmp_path, source):
    name, blob, _ = _archive(source)
    with FileServer({f"/{name}": blob}) as server, pytest.raises(ChecksumError, match=name):
        ingest(tmp_path / "raw", _params(source, url=server.url(f"/{name}"), md5="f" * 32), downloads=tmp_path / "dl")
    assert not (tmp_path / "raw").exists() and not any(p.is_file() for p in (tmp_path / "dl").rglob("*"))


def test_zenodo_md5_comes_from_the_record(tmp_path):
    """AMOS and FLARE22 publish no md5 beside the link: it is read from Zenodo's records API."""
    record = b'{"files": [{"key": "other.zip", "checksum": "md5:00"}, {"key": "FLARE22Train.zip", "checksum": "md5:abc123"}]}'
    with FileServer({"/api/records/7860267": record}) as server:
        url = sources.SOURCES["flare22"].url
        assert zenodo_md5(url, api=server.url("")) == "abc123"
    assert zenodo_md5("https://example.org/data.zip") is None


def test_range_reads_fetch_only_the_wanted_cases(tmp_path, capsys):
    files, expected = _layout("totalsegmentator", n=8)
    rng = np.random.default_rng(0)
    for i in range(1, 9):  # the other 113 masks of each real case, which we never read: 300 kB of them here
        files[f"s{i:04d}/segmentations/colon.nii.gz"] = rng.bytes(300_000)
    blob = _zip(files)
    with FileServer({"/ts.zip": blob}) as server:
        ingest(tmp_path / "raw", _params("totalsegmentator", url=server.url("/ts.zip"), max_cases=3),
                 downloads=tmp_path / "downloads")
        sent = server.bytes_sent
    assert sent < len(blob) / 2, (sent, len(blob))
    # meta.csv and the end records, then one request per case (its image and masks lie together): not one per file
    assert len(server.requests) <= 2 + 3 + 3, server.requests
    assert not any((tmp_path / "downloads").rglob("ts.zip*"))  # the archive never came whole
    assert "MB transferred" in capsys.readouterr().out
    _check(tmp_path / "raw", {k: expected[k] for k in ["s0001", "s0002", "s0003"]}, "totalsegmentator")
    manifest = read_manifest(tmp_path / "raw" / "manifest.tsv")
    assert list(manifest["split"]) == ["train", "val", "test"]  # meta.csv's official split
    assert manifest["url"][0] == server.url("/ts.zip") + "#s0001/ct.nii.gz"


def test_explicit_case_list_and_unknown_cases(tmp_path):
    files, expected = _layout("flare22", n=5)
    blob = _zip(files)
    with FileServer({"/f.zip": blob}) as server:
        wanted = ["FLARE22_Tr_0005", "FLARE22_Tr_0002", "FLARE22_Tr_0003"]
        ingest(tmp_path / "raw", _params("flare22", url=server.url("/f.zip"), cases=wanted), downloads=tmp_path / "dl")
        assert sorted(read_manifest(tmp_path / "raw" / "manifest.tsv")["case"]) == sorted(wanted)
        with pytest.raises(ValueError, match=r"\['FLARE22_Tr_0042'\] not in flare22"):
            ingest(tmp_path / "raw2", _params("flare22", url=server.url("/f.zip"), cases=["FLARE22_Tr_0042"]),
                     downloads=tmp_path / "dl")


def test_interrupted_download_resumes(tmp_path):
    data = np.random.default_rng(0).bytes(3_000_000)
    with FileServer({"/big.bin": data}, break_after=1_200_000, breaks=1) as server:
        out = fetch(server.url("/big.bin"), tmp_path / "big.bin", md5sum_bytes(data), retries=3, backoff=0.01)
        assert out.read_bytes() == data
        assert server.requests[0][1] is None and server.requests[1][1] == "bytes=1200000-"  # resumed, not restarted
    assert not (tmp_path / "big.bin.part").exists()


def test_a_complete_part_file_is_checked_not_refetched(tmp_path):
    """Killed between the last byte and the rename: the server answers 416, the .part is verified and kept."""
    data = b"0123456789" * 10_000
    (tmp_path / "a.zip.part").write_bytes(data)
    with FileServer({"/a.zip": data}) as server:
        fetch(server.url("/a.zip"), tmp_path / "a.zip", md5sum_bytes(data), retries=1, backoff=0.01)
        assert server.bytes_sent == 0
    assert (tmp_path / "a.zip").read_bytes() == data and not (tmp_path / "a.zip.part").exists()


def test_rate_limited_server_is_waited_out(tmp_path):
    data = b"x" * 5000
    with FileServer({"/a.zip": data}, busy=2) as server:
        fetch(server.url("/a.zip"), tmp_path / "a.zip", md5sum_bytes(data), retries=3, backoff=0.01)
        assert len(server.requests) == 3
    assert (tmp_path / "a.zip").read_bytes() == data


def test_wrong_checksum_fails_clearly_and_leaves_nothing(tmp_path):
    data = b"not the archive you are looking for" * 1000
    with FileServer({"/a.zip": data}) as server:
        with pytest.raises(ChecksumError) as err:
            fetch(server.url("/a.zip"), tmp_path / "a.zip", "0" * 32)
    message = str(err.value)
    assert "a.zip" in message and "0" * 32 in message and md5sum_bytes(data) in message
    assert list(tmp_path.iterdir()) == []


def test_network_failure_retries_then_says_what_failed(tmp_path):
    with FileServer({}) as server:
        url = server.url("/gone.zip")
    with pytest.raises(DownloadError, match="failed after 3 attempts"):  # the server is shut down: connection refused
        fetch(url, tmp_path / "gone.zip", retries=2, backoff=0.01)
    with FileServer({}) as server, pytest.raises(DownloadError, match="HTTP 404"):
        fetch(server.url("/missing.zip"), tmp_path / "missing.zip", retries=2, backoff=0.01)
    assert list(tmp_path.iterdir()) == []


def test_unsafe_archives_are_refused(tmp_path):
    evil = tmp_path / "evil.zip"
    evil.write_bytes(_zip({"../escape.nii.gz": b"x", "ok.txt": b"y"}))
    with pytest.raises(UnsafeArchiveError, match="outside the target"):
        extract(open_archive(evil), ["../escape.nii.gz"], tmp_path / "out")
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        link = tarfile.TarInfo("data/link.nii.gz")
        link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
        tf.addfile(link)
    (tmp_path / "links.tar").write_bytes(buf.getvalue())
    with pytest.raises(UnsafeArchiveError, match="link"):
        extract(open_archive(tmp_path / "links.tar"), ["data/link.nii.gz"], tmp_path / "out")
    bomb = tmp_path / "bomb.zip"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("zeros.bin", b"\0" * 5_000_000)
    assert bomb.stat().st_size < 100_000
    with pytest.raises(UnsafeArchiveError, match="over 1000000"):
        extract(open_archive(bomb), ["zeros.bin"], tmp_path / "out", max_bytes=1_000_000)
    assert not (tmp_path / "escape.nii.gz").exists() and not any((tmp_path / "out").rglob("*.bin"))


@pytest.mark.parametrize("problem", ["shape", "affine", "unknown_id", "missing_mask", "corrupt", "cut_short"])
def test_bad_cases_fail_by_name_or_are_skipped(tmp_path, problem):
    source = "totalsegmentator" if problem == "missing_mask" else "flare22"
    files, expected = _layout(source, n=5)
    if source == "flare22":
        bad, key = "FLARE22_Tr_0003", "FLARE22Train/labels/FLARE22_Tr_0003.nii.gz"
        image, theirs, _, affine = _case(3, SOURCE_IDS["flare22"][0], 11, "LPS")
        if problem == "corrupt":
            files[key] = files[key][:60]  # not even a whole header
        elif problem == "cut_short":
            files[key] = files[key][:-40]  # the voxel data ends early
        elif problem == "shape":
            files[key] = _nii(theirs[:, :, :-1], affine)
        elif problem == "affine":
            files[key] = _nii(theirs, affine @ np.diag([1.0, 1.0, 1.1, 1.0]))
        else:
            theirs[0, 0, 0] = 99
            files[key] = _nii(theirs, affine)
    else:
        bad = "s0003"
        files = {k: v for k, v in files.items() if k != "s0003/segmentations/spleen.nii.gz"}
    for name, data in files.items():
        (tmp_path / "data" / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "data" / name).write_bytes(data)
    params = _params(source, folder=str(tmp_path / "data"))
    with pytest.raises(ValueError, match=bad) as err:
        ingest(tmp_path / "raw", params, downloads=tmp_path / "dl")
    assert {"shape": "shape", "affine": "affine", "unknown_id": "[99]", "missing_mask": "spleen.nii.gz is missing",
            "corrupt": "corrupt or truncated", "cut_short": "corrupt or truncated"}[problem] in str(err.value)
    ingest(tmp_path / "raw", {**params, "on_bad_case": "skip"}, downloads=tmp_path / "dl")
    _check(tmp_path / "raw", {k: v for k, v in expected.items() if k != bad}, source)


def test_not_annotated_organs_are_excluded_from_evaluation(tmp_path):
    """msd_spleen labels only the spleen: liver and kidneys are 'not annotated' from download to evaluation."""
    files, _ = _layout("msd_spleen", n=3)
    blob = _tar(files)
    with FileServer({"/Task09_Spleen.tar": blob}) as server:
        ingest(tmp_path / "raw", _params("msd_spleen", url=server.url("/Task09_Spleen.tar"), md5=md5sum_bytes(blob)),
                 downloads=tmp_path / "dl")
    row = read_manifest(tmp_path / "raw" / "manifest.tsv").iloc[0]
    assert row["annotated"] == "spleen"
    label = tmp_path / "raw" / "labels" / f"{row['case']}.nii.gz"
    prediction = tmp_path / "pred.nii.gz"
    lab = nifti.load(label)
    pred = np.asarray(lab.dataobj).copy()
    pred[BOXES[L.LIVER]] = L.LIVER  # a liver the reference cannot judge
    nifti.save(pred, lab.affine, prediction)
    scores = evaluate_case(row["case"], prediction, label, row["annotated"].split(","), 2.0)
    assert list(scores["organ"]) == ["spleen"] and scores["dice"].iloc[0] == 1.0


def test_dicom_series_ingest_with_geometry(tmp_path):
    """data.source local with one DICOM series folder per case: the raw NIfTI keeps the series' geometry."""
    from test_dicom import write_series

    rng = np.random.default_rng(1)
    origin = np.array([-100.0, -80.0, 30.0])
    for n in range(3):
        hu = rng.integers(-1000, 1000, (20, 16, 7)).astype(np.int16)
        # voxels big enough for the tiny array to span a body (ingest checks the scan as predict does)
        write_series(tmp_path / "data" / "images" / f"patient{n}", hu, np.array([1.0, 0, 0]), np.array([0, 1.0, 0]),
                     (8.0, 8.0, 12.0), origin, rng)
        # DICOM LPS: i runs to the patient's left, j posterior; in RAS that is a diagonal of -8, -8, 12
        affine = np.diag([-8.0, -8.0, 12.0, 1.0])
        affine[:3, 3] = [100.0, 80.0, 30.0]
        lab = np.zeros(hu.shape, np.uint8)
        lab[2:6, 3:8, 1:4] = 2  # our IDs: label_map is the identity
        nifti.save(lab, affine, tmp_path / "data" / "labels" / f"patient{n}.nii.gz")
        if n == 0:
            first_hu, first_affine = hu, affine
    params = _params("local", folder=str(tmp_path / "data"), local={"label_map": {1: 1, 2: 2, 3: 3, 4: 4}})
    ingest(tmp_path / "raw", params, downloads=tmp_path / "dl")
    img = nifti.load(tmp_path / "raw" / "images" / "patient0.nii.gz")
    np.testing.assert_allclose(img.affine, first_affine, atol=1e-4)
    np.testing.assert_array_equal(np.asarray(img.dataobj), first_hu)


def test_real_ct_through_the_local_source(tmp_path):
    """The real CT fixture with TotalSegmentator's class map: every organ present, on the patient's side."""
    for sub, name in (("images", "example_ct_sm.nii.gz"), ("labels", "example_seg.nii.gz")):
        (tmp_path / "data" / sub).mkdir(parents=True)
        for n in range(3):  # the split needs three cases; the same scan three times
            (tmp_path / "data" / sub / f"real{n}.nii.gz").symlink_to(real_ct.FOLDER / name)
    params = _params("local", folder=str(tmp_path / "data"),
                     local={"label_map": sources.TOTALSEGMENTATOR_CLASSES, "max_id": 117})
    ingest(tmp_path / "raw", params, downloads=tmp_path / "dl")
    lab_img = nifti.load(tmp_path / "raw" / "labels" / "real0.nii.gz")
    lab = np.asarray(lab_img.dataobj)
    assert set(np.unique(lab)) == {0, *L.ORGANS}
    x = {o: (lab_img.affine[:3, :3] @ np.argwhere(lab == o).mean(0) + lab_img.affine[:3, 3])[0] for o in L.ORGANS}
    assert x[L.KIDNEY_RIGHT] > x[L.KIDNEY_LEFT] and x[L.LIVER] > x[L.SPLEEN], x
    raw_seg = np.asarray(nifti.load(real_ct.REFERENCE).dataobj)
    for theirs, ours in sources.TOTALSEGMENTATOR_CLASSES.items():
        np.testing.assert_array_equal(lab == ours, raw_seg == theirs)


def test_full_totalsegmentator_variant_and_unknown_sources():
    from abdoseg.ingest import _source

    full = _source({"source": "totalsegmentator", "totalsegmentator_variant": "full"})
    assert (full.url, full.md5) == sources.TOTALSEGMENTATOR_FULL
    assert _source({"source": "totalsegmentator"}).md5 == "6b5524af4b15e6ba06ef2d700c0c73e0"
    with pytest.raises(ValueError, match="not supported; available"):
        _source({"source": "kits"})
