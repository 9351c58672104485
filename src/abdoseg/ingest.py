"""Ingest (the download rule): bring every case of the configured source into data/raw in one layout.

Whatever the source, the result is `images/{case}.nii.gz`, `labels/{case}.nii.gz` (already mapped to the
target label table) and `manifest.tsv` with one row of provenance per case. For a remote archive: when only some
cases are wanted and the server honours Range requests, just their members are read out of the remote zip;
otherwise the archive is downloaded whole (resumable, checksummed) into data/downloads, then unpacked member by
member. Each case is checked (files present, image and labels on one grid, label IDs known to the source)
before it is written; a bad case fails the step or is skipped, as `data.on_bad_case` says.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import zipfile
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

import nibabel as nib
import numpy as np
import pandas as pd
from tqdm import tqdm

from . import archive, fetch, files, nifti, scan_checks, scan_io, sources, synthetic
from . import labels as L
from .manifest import write_manifest

MAX_VOLUME_BYTES = 8 << 30  # a CT volume in memory; above it a header is lying (or it is not an abdominal CT)


def raw_paths(raw_dir: str | os.PathLike, case: str) -> tuple[Path, Path]:
    """The image and label paths of a case in the raw layout."""
    raw_dir = Path(raw_dir)
    return raw_dir / "images" / f"{case}.nii.gz", raw_dir / "labels" / f"{case}.nii.gz"


def write_case(raw_dir: str | os.PathLike, case: str, image: np.ndarray, labels: np.ndarray, affine: np.ndarray,
               source: str, url: str = "", annotated: list[str] | None = None, notes: list[str] | None = None,
               split: str = "") -> dict:
    """Write one case in the raw layout (atomically) and return its manifest row."""
    if image.shape != labels.shape:
        raise ValueError(f"case {case}: image shape {image.shape} differs from label shape {labels.shape}")
    unknown = set(np.unique(labels).tolist()) - set(range(L.NUM_CLASSES))
    if unknown:
        raise ValueError(f"case {case}: label values {sorted(unknown)} are not in the label table")
    img_path, lab_path = raw_paths(raw_dir, case)
    nifti.save(image, affine, img_path)
    nifti.save(labels.astype(np.uint8), affine, lab_path)
    return {
        "case": case,
        "source": source,
        "url": url,
        "sha256": files.sha256(img_path),
        "spacing": "x".join(f"{s:.4g}" for s in nifti.spacing(affine)),
        "shape": "x".join(str(s) for s in image.shape),
        "axes": nifti.axcodes(affine),
        "dtype": str(image.dtype),
        "annotated": ",".join(annotated if annotated is not None else L.ORGANS.values()),
        "split": split,
        "notes": ",".join(notes or []),
    }


def _synthetic_one(args: tuple[str, int, synthetic.SyntheticConfig]) -> dict:
    raw_dir, index, cfg = args
    case = synthetic.generate_case(index, cfg)
    return write_case(raw_dir, synthetic.case_name(index), case.image, case.labels, case.affine,
                      source="synthetic", url=f"synthetic://seed={cfg.seed}/index={index}", notes=case.notes)


def download_synthetic(raw_dir: str | os.PathLike, cfg: synthetic.SyntheticConfig, workers: int = 1) -> pd.DataFrame:
    """Generate the synthetic cases in parallel processes and write the manifest."""
    jobs = [(str(raw_dir), i, cfg) for i in range(cfg.n_cases)]
    if workers > 1:
        with ProcessPoolExecutor(workers) as pool:
            rows = list(tqdm(pool.map(_synthetic_one, jobs), total=len(jobs), desc="synthetic cases", unit="case"))
    else:
        rows = [_synthetic_one(j) for j in tqdm(jobs, desc="synthetic cases", unit="case")]
    return write_manifest(raw_dir, rows)


class BadCase(ValueError):
    """A case that fails the checks: missing file, image and labels on different grids, unknown label IDs."""


READ_ERRORS = nifti.READ_ERRORS  # what nibabel, gzip and pydicom raise on a broken file


@contextmanager
def _reading(case: str, name: str) -> Iterator[None]:
    """Turn a read error into a BadCase that names the case and the file."""
    try:
        yield
    except (BadCase, scan_checks.InputError):
        raise
    except READ_ERRORS as err:
        cause = err.__cause__ if isinstance(err, nifti.CorruptFile) else err  # nibabel's reason, not nifti's whole line
        raise BadCase(f"case {case}: {name} is corrupt or truncated ({cause})") from err


def _refuse_oversized(img: nib.Nifti1Image, case: str, name: str) -> None:
    """Refuse a NIfTI header that announces more than MAX_VOLUME_BYTES of voxels, before they are read."""
    size = int(np.prod(img.shape)) * img.get_data_dtype().itemsize
    if size > MAX_VOLUME_BYTES:
        raise BadCase(f"case {case}: {name} announces {size / 1e9:.1f} GB of voxels, over {MAX_VOLUME_BYTES / 1e9:.0f} GB")


def read_image(path: Path, case: str = "") -> tuple[np.ndarray, np.ndarray]:
    """(array, affine) of a NIfTI file or of a folder holding one DICOM series (scan_io); stored integers stay integers.

    The scan must pass the same checks as a scan given to predict (abdoseg.scan_checks), or it is a BadCase.
    """
    name = f"case {case}: {path.name}"
    try:
        with _reading(case, path.name):
            array, affine, header = scan_io.read_scan(path, name, lambda img: _refuse_oversized(img, case, path.name))
        scan_checks.check_scan(array, affine, name, header)
    except scan_checks.InputError as err:
        raise BadCase(str(err)) from err
    return array, affine


def _read_label(path: Path, case: str, shape: tuple, affine: np.ndarray, max_id: int | None) -> np.ndarray:
    """A label file as integers, after checking its grid against the image's and its values against the source."""
    if not path.exists():
        raise BadCase(f"case {case}: label file {path.name} is missing")
    with _reading(case, path.name):
        img = nifti.load(path)
        _refuse_oversized(img, case, path.name)
        lab = nifti.voxels(img, path.name)
    if img.shape != shape:
        raise BadCase(f"case {case}: labels {path.name} have shape {img.shape}, the image {shape}")
    if not np.allclose(img.affine, affine, atol=nifti.GRID_TOLERANCE_MM):
        raise BadCase(f"case {case}: labels {path.name} and the image have different affines "
                      f"(largest difference {np.abs(img.affine - affine).max():.3g} mm)")
    if not np.issubdtype(lab.dtype, np.integer) and not np.array_equal(lab, np.round(lab)):
        raise BadCase(f"case {case}: labels {path.name} hold non-integer values")
    values = np.unique(lab).astype(np.int64)
    unknown = values[(values < 0) | (values > (max_id if max_id is not None else np.iinfo(np.int32).max))]
    if unknown.size:
        raise BadCase(f"case {case}: labels {path.name} hold IDs {unknown.tolist()} unknown to the source "
                      f"(IDs 0..{max_id})")
    return lab.astype(np.int32)


def ingest_case(raw_dir: str, root: str, files: sources.CaseFiles, source: str, url: str, label_map: dict[int, int],
                max_id: int | None, annotated: list[str], notes: list[str]) -> dict:
    """Read, check, map and write one case of a real dataset; returns its manifest row or raises BadCase."""
    base = Path(root)
    image_path = base / files.image
    if not image_path.exists():
        raise BadCase(f"case {files.case}: image {files.image} is missing")
    image, affine = read_image(image_path, files.case)
    if files.label is not None:
        lab = _read_label(base / files.label, files.case, image.shape, affine, max_id)
        lut = np.zeros(int(lab.max()) + 1, np.uint8)
        for theirs, ours in label_map.items():
            if theirs < lut.size:
                lut[theirs] = ours
        labels = lut[lab]
    else:  # one binary mask per organ
        labels = np.zeros(image.shape, np.uint8)
        for ours, mask_file in sorted(files.masks.items()):
            labels[_read_label(base / mask_file, files.case, image.shape, affine, max_id) > 0] = ours
    member = files.image if url else str(image_path)
    return write_case(raw_dir, files.case, image, labels, affine, source, f"{url}#{member}" if url else member,
                      annotated, notes, files.split)


def _ingest(args: tuple) -> dict | str:
    """Pool worker: a manifest row, or the BadCase message."""
    try:
        return ingest_case(*args)
    except BadCase as err:
        return str(err)


def select_cases(cases: list[sources.CaseFiles], data_params: dict, source: str) -> list[sources.CaseFiles]:
    """The explicit case list (data.cases) if given, else the first data.max_cases in case order, else all."""
    if not cases:
        raise ValueError(f"data.source {source}: no case found (are data.folder and the layout right?)")
    wanted = data_params.get("cases") or []
    if wanted:
        by_name = {c.case: c for c in cases}
        missing = [w for w in wanted if w not in by_name]
        if missing:
            raise ValueError(f"data.cases: {missing} not in {source} (it has {len(cases)} cases, e.g. "
                             f"{[c.case for c in cases[:3]]})")
        return [by_name[w] for w in wanted]
    n = data_params.get("max_cases")
    return cases[:int(n)] if n else cases


def _source(data_params: dict) -> sources.Source:
    name = data_params["source"]
    if name == "local":
        return sources.local_source(data_params.get("local") or {})
    if name not in sources.SOURCES:
        raise ValueError(f"data.source {name!r} is not supported; available: synthetic, local, {', '.join(sources.SOURCES)}")
    src = sources.SOURCES[name]
    if name == "totalsegmentator" and data_params.get("totalsegmentator_variant", "small") == "full":
        url, md5 = sources.TOTALSEGMENTATOR_FULL
        src = dataclasses.replace(src, url=url, md5=md5)
    return src


@dataclasses.dataclass(frozen=True)
class Opened:
    """A dataset opened for reading, whatever it is (a folder, a remote zip read by ranges, a downloaded archive)."""

    root: str  # where the extracted members (or the folder's files) lie
    url: str  # the archive URL, "" for a folder
    names: list[str]  # member names, relative to root
    read: Callable[[str], bytes]  # one member's bytes (the sources' case finders read small CSVs with it)
    extract: Callable[[list[str]], None]  # put these members under root (a no-op for a folder)
    notes: list[str]  # provenance for the manifest: how the bytes were checked


def _open(src: sources.Source, data_params: dict, downloads: Path) -> Opened:
    """Open the configured dataset: a folder, a remote zip (only the wanted members) or a downloaded archive."""
    folder = data_params.get("folder")
    url = data_params.get("url") or src.url  # data.url: a mirror, or your own copy of a folder-only dataset's archive
    if url is None or (folder and not data_params.get("url")):
        if not folder:
            raise ValueError(f"data.source {src.name}: set data.folder to where the dataset is unpacked, or data.url "
                             f"to an archive of it ({src.note})")
        root = Path(folder)
        if not root.is_dir():
            raise ValueError(f"data.folder {root} is not a folder")
        names = sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())
        return Opened(str(root), "", names, lambda n: (root / n).read_bytes(), lambda members: None, [])
    md5 = data_params.get("md5") or src.md5  # a mirror (data.url) serves the same file
    # one cache folder per archive URL: the small and full TotalSegmentator sets, or a mirror, never mix
    target = downloads / src.name / hashlib.sha256(url.encode()).hexdigest()[:12]
    local = target / url.split("?")[0].rsplit("/", 1)[-1]
    subset = bool(data_params.get("cases") or data_params.get("max_cases"))
    members = target / "members"
    if subset and not local.exists() and data_params.get("range_reads", True) and local.suffix == ".zip":
        ranged, size = fetch.supports_range(url)
        if ranged:
            remote = fetch.RemoteFile(url, size)
            zf = zipfile.ZipFile(remote)
            print(f"{url}: reading single members over HTTP Range requests ({size / 1e9:.2f} GB archive)", flush=True)

            def extract(names: list[str]) -> None:
                archive.extract(zf, names, members)
                print(f"{url}: {remote.bytes_transferred / 1e6:.1f} MB transferred in {remote.requests} requests "
                      f"for {len(names)} files ({remote.bytes_transferred / size:.2%} of the archive)", flush=True)

            return Opened(str(members), url, archive.names(zf), zf.read, extract,
                          ["range-read", "zip CRC-32 checked per member (no whole-archive md5)"])
        print(f"{url}: the server ignores Range requests; downloading the whole archive", flush=True)
    md5 = md5 or fetch.zenodo_md5(url)  # AMOS and FLARE22: Zenodo publishes the md5 with the record
    fetch.fetch(url, local, md5)
    arc = archive.open_archive(local)
    names = archive.names(arc)

    def read(name: str) -> bytes:
        archive.extract(arc, [name], members)
        return (members / archive.safe_relpath(name)).read_bytes()

    return Opened(str(members), url, names, read, lambda names_: archive.extract(arc, names_, members),
                  [f"archive md5 {md5}" if md5 else "archive without a published md5"])


def download_dataset(raw_dir: str | os.PathLike, data_params: dict, downloads: str | os.PathLike,
                     workers: int = 1) -> pd.DataFrame:
    """Fetch (or find) a real dataset, select the wanted cases, check, map and write them; then the manifest."""
    src = _source(data_params)
    opened = _open(src, data_params, Path(downloads))
    chosen = select_cases(src.find_cases(opened.names, opened.read), data_params, src.name)
    print(f"{src.name}: {len(chosen)} cases selected", flush=True)
    listed = set(opened.names)
    opened.extract(sorted({f for c in chosen for f in [c.image, c.label, *c.masks.values()] if f in listed}))
    jobs = [(str(raw_dir), opened.root, c, src.name, opened.url, src.label_map, src.max_id, src.annotated, opened.notes)
            for c in chosen]
    if workers > 1:
        with ProcessPoolExecutor(workers) as pool:
            results = list(tqdm(pool.map(_ingest, jobs), total=len(jobs), desc=f"{src.name} cases", unit="case"))
    else:
        results = [_ingest(j) for j in tqdm(jobs, desc=f"{src.name} cases", unit="case")]
    bad = [r for r in results if isinstance(r, str)]
    rows = [r for r in results if isinstance(r, dict)]
    if bad and data_params.get("on_bad_case", "fail") == "fail":
        raise ValueError(f"{len(bad)} bad case(s) (data.on_bad_case: fail):\n" + "\n".join(bad))
    for message in bad:
        print(f"skipped: {message}", flush=True)
    if len(rows) < 3:
        raise ValueError(f"{src.name}: only {len(rows)} usable cases; the split needs at least 3")
    return write_manifest(raw_dir, rows)


def ingest(raw_dir: str | os.PathLike, data_params: dict, workers: int = 1,
             downloads: str | os.PathLike = "data/downloads") -> pd.DataFrame:
    """Ingest `data.source` into `raw_dir` (the download rule): fetch or generate, check, map labels, write the manifest."""
    if data_params["source"] == "synthetic":
        return download_synthetic(raw_dir, synthetic.SyntheticConfig.from_params(data_params.get("synthetic", {})), workers)
    return download_dataset(raw_dir, data_params, downloads, workers)
