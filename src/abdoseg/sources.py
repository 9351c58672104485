"""The datasets the download step knows: where each lives, its file layout, and its label IDs mapped onto ours.

Every mapping below was checked against the dataset's own documentation (README "Datasets" links them):
TotalSegmentator v2 writes one mask per class (liver, kidney_right, kidney_left, spleen); AMOS22's dataset.json
and BTCV's label list: 1 spleen, 2 right kidney, 3 left kidney, 6 liver; FLARE22: 1 liver, 2 right kidney,
3 spleen, 13 left kidney; WORD: 1 liver, 2 spleen, 3 left kidney, 4 right kidney; MSD Task09: 1 spleen.
Right and left are the patient's in every one of them. Any other class becomes background (0).
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field
from typing import Callable

from . import labels as L


@dataclass(frozen=True)
class CaseFiles:
    """Where one case's files are, relative to the archive or folder root."""

    case: str
    image: str  # a NIfTI file, or a folder holding one DICOM series
    label: str | None = None  # one label map in the source's IDs
    masks: dict[int, str] = field(default_factory=dict)  # or one binary mask per organ: our ID -> file
    split: str = ""  # the dataset's official subset (train / val / test), when it has one


@dataclass(frozen=True)
class Source:
    """A dataset: its archive (or a local folder), its label IDs, and how to find its cases in a file listing."""

    name: str
    label_map: dict[int, int]  # source ID -> our ID
    max_id: int | None  # highest label ID the source uses (None: any); higher values mark a bad case
    find_cases: Callable[[list[str], Callable[[str], bytes]], list[CaseFiles]]  # (names, read member) -> cases
    url: str | None = None  # archive URL; None: the data is a local folder (data.folder)
    md5: str | None = None
    licence: str = ""
    note: str = ""

    @property
    def annotated(self) -> list[str]:
        """Our organs this source labels; the rest are 'not annotated' (excluded from evaluation, never 0)."""
        return [L.ORGANS[i] for i in sorted(set(self.label_map.values()))]


def _pairs(names: list[str], image_re: str, label_of: Callable[[re.Match], str],
           case_of: Callable[[re.Match], str]) -> list[CaseFiles]:
    """Cases whose image matches `image_re`, with the label file `label_of` names (the download step reports a
    case whose label file is missing by name, rather than dropping it silently)."""
    cases = []
    for name in names:
        m = re.fullmatch(image_re, name)
        if m:
            cases.append(CaseFiles(case_of(m), name, label_of(m)))
    return sorted(cases, key=lambda c: c.case)


def _totalsegmentator(names: list[str], read: Callable[[str], bytes]) -> list[CaseFiles]:
    """sNNNN/ct.nii.gz with sNNNN/segmentations/{organ}.nii.gz; meta.csv (';'-separated) holds the official split."""
    organs = {"liver": L.LIVER, "kidney_right": L.KIDNEY_RIGHT, "kidney_left": L.KIDNEY_LEFT, "spleen": L.SPLEEN}
    meta = [n for n in names if n.rsplit("/", 1)[-1] == "meta.csv"]
    split = {}
    if meta:
        rows = csv.DictReader(io.StringIO(read(meta[0]).decode("utf-8-sig")), delimiter=";")
        split = {r["image_id"]: r.get("split", "") for r in rows}
    cases = []
    for name in names:
        m = re.fullmatch(r"(.*?)(s\d{4})/ct\.nii\.gz", name)
        if not m:
            continue
        masks = {our: f"{m.group(1)}{m.group(2)}/segmentations/{organ}.nii.gz" for organ, our in organs.items()}
        cases.append(CaseFiles(m.group(2), name, None, masks, split.get(m.group(2), "")))
    return sorted(cases, key=lambda c: c.case)


def _amos(names: list[str], read: Callable[[str], bytes]) -> list[CaseFiles]:
    """amos22/images{Tr,Va}/amos_NNNN.nii.gz (Tr and Va: the official train and validation subsets; the test
    labels are not public); CT only (ids up to 500, MRI above: the dataset's readme)."""
    cases = _pairs(names, r"(.*)images(Tr|Va)/amos_(\d{4})\.nii\.gz",
                   lambda m: f"{m.group(1)}labels{m.group(2)}/amos_{m.group(3)}.nii.gz", lambda m: f"amos_{m.group(3)}")
    return [CaseFiles(c.case, c.image, c.label, split="train" if "/imagesTr/" in f"/{c.image}" else "val")
            for c in cases if int(c.case.split("_")[1]) <= 500]


def _flare22(names: list[str], read: Callable[[str], bytes]) -> list[CaseFiles]:
    return _pairs(names, r"(.*)images/FLARE22_Tr_(\d{4})_0000\.nii\.gz",
                  lambda m: f"{m.group(1)}labels/FLARE22_Tr_{m.group(2)}.nii.gz", lambda m: f"FLARE22_Tr_{m.group(2)}")


def _word(names: list[str], read: Callable[[str], bytes]) -> list[CaseFiles]:
    """images{Tr,Val,Ts}/word_NNNN.nii.gz with labels{Tr,Val,Ts}/ (the folder names give the official split)."""
    subset = {"Tr": "train", "Val": "val", "Ts": "test"}
    cases = _pairs(names, r"(.*)images(Tr|Val|Ts)/(word_\d{4})\.nii\.gz",
                   lambda m: f"{m.group(1)}labels{m.group(2)}/{m.group(3)}.nii.gz", lambda m: m.group(3))
    return [CaseFiles(c.case, c.image, c.label, split=subset[re.search(r"images(Tr|Val|Ts)/", c.image).group(1)])
            for c in cases]


def _btcv(names: list[str], read: Callable[[str], bytes]) -> list[CaseFiles]:
    """RawData/Training/img/imgNNNN.nii.gz with label/labelNNNN.nii.gz (Testing/ has no labels: not a case)."""
    return _pairs(names, r"(.*Training/)img/img(\d{4})\.nii\.gz", lambda m: f"{m.group(1)}label/label{m.group(2)}.nii.gz",
                  lambda m: f"btcv_{m.group(2)}")


def _msd_spleen(names: list[str], read: Callable[[str], bytes]) -> list[CaseFiles]:
    """Task09_Spleen/imagesTr/spleen_N.nii.gz with labelsTr/; the macOS '._spleen_N' companions are skipped."""
    return _pairs(names, r"(.*)imagesTr/(spleen_\d+)\.nii\.gz", lambda m: f"{m.group(1)}labelsTr/{m.group(2)}.nii.gz",
                  lambda m: m.group(2))


ZENODO = "https://zenodo.org/records/{record}/files/{name}?download=1"  # the /records/ form honours Range requests

SOURCES: dict[str, Source] = {s.name: s for s in [
    # one binary mask per organ (max_id 1), combined straight into our IDs: the map is the identity
    Source("totalsegmentator", {i: i for i in L.ORGANS}, 1, _totalsegmentator,
           ZENODO.format(record=10047263, name="Totalsegmentator_dataset_small_v201.zip"),
           "6b5524af4b15e6ba06ef2d700c0c73e0", "CC BY 4.0", "102 CT, 3.2 GB (small v2.0.1); the full set: variant full"),
    Source("amos", {6: L.LIVER, 2: L.KIDNEY_RIGHT, 3: L.KIDNEY_LEFT, 1: L.SPLEEN}, 15, _amos,
           ZENODO.format(record=7262581, name="amos22.zip"), None, "CC BY 4.0 (Zenodo record)",
           "300 CT with labels (plus MRI, skipped), 23 GB"),
    Source("flare22", {1: L.LIVER, 2: L.KIDNEY_RIGHT, 13: L.KIDNEY_LEFT, 3: L.SPLEEN}, 13, _flare22,
           ZENODO.format(record=7860267, name="FLARE22Train.zip"), None, "CC BY 4.0 (Zenodo record)",
           "50 labelled CT"),
    Source("word", {1: L.LIVER, 4: L.KIDNEY_RIGHT, 3: L.KIDNEY_LEFT, 2: L.SPLEEN}, 16, _word, licence="GPL-3.0, research only",
           note="150 CT; shared by the authors on request (a drive link): unpack it and set data.folder"),
    Source("btcv", {6: L.LIVER, 2: L.KIDNEY_RIGHT, 3: L.KIDNEY_LEFT, 1: L.SPLEEN}, 13, _btcv, licence="Synapse terms of use",
           note="30 labelled CT; needs a Synapse login: unpack RawData.zip and set data.folder"),
    Source("msd_spleen", {1: L.SPLEEN}, 1, _msd_spleen,
           "https://msd-for-monai.s3-us-west-2.amazonaws.com/Task09_Spleen.tar", "410d4a301da4e5b2f6f86ec3ddba524e",
           "CC BY-SA 4.0", "41 labelled CT, 1.5 GB; spleen only: liver and kidneys are 'not annotated'"),
]}

#: the full TotalSegmentator v2.0.1 set (data.totalsegmentator_variant: full)
TOTALSEGMENTATOR_FULL = (ZENODO.format(record=10047292, name="Totalsegmentator_dataset_v201.zip"),
                         "fe250e5718e0a3b5df4c4ea9d58a62fe")

#: TotalSegmentator v2's multi-class output ("total" task): 1 spleen, 2 kidney_right, 3 kidney_left, 5 liver;
#: the label map for a `local` folder of its predictions (and for the real-CT fixture in tests).
TOTALSEGMENTATOR_CLASSES = {5: L.LIVER, 2: L.KIDNEY_RIGHT, 3: L.KIDNEY_LEFT, 1: L.SPLEEN}


def local_source(params: dict) -> Source:
    """The `local` source from params: data.local.label_map (source ID -> our ID), optional max_id."""
    label_map = {int(k): int(v) for k, v in params["label_map"].items()}
    bad = {v for v in label_map.values() if v not in L.ORGANS}
    if bad:
        raise ValueError(f"data.local.label_map maps onto {sorted(bad)}, which are not organ IDs {sorted(L.ORGANS)}")
    images, labels = params.get("images", "images").strip("/"), params.get("labels", "labels").strip("/")
    max_id = params.get("max_id")
    return Source("local", label_map, None if max_id is None else int(max_id),
                  lambda names, read: find_scans(names, images, labels))


def find_scans(names: list[str], images: str = "images", labels: str = "labels") -> list[CaseFiles]:
    """The cases of a folder, from its files' relative names: `{images}/{case}.nii[.gz]` or `{images}/{case}/...` (a
    DICOM series folder), each with `{labels}/{case}.nii[.gz]` (named even when missing: the caller reports it).
    `images` may be "" for a folder of scans with no labels beside them. The `local` source and the CLI use it."""
    present = set(names)
    folder = f"{images}/" if images else ""
    cases = {}
    for name in sorted(names):
        if name.startswith(f"{labels}/"):
            continue  # with images="" the labels folder would look like a DICOM series
        m = re.fullmatch(rf"{re.escape(folder)}([^/]+?)(\.nii\.gz|\.nii|/.+)", name)
        if not m:
            continue
        case = m.group(1)
        label = next((f"{labels}/{case}{ext}" for ext in (".nii", ".nii.gz") if f"{labels}/{case}{ext}" in present),
                     f"{labels}/{case}.nii.gz")
        image = name if m.group(2) in (".nii.gz", ".nii") else f"{folder}{case}"  # a DICOM series folder
        cases.setdefault(case, CaseFiles(case, image, label))
    return sorted(cases.values(), key=lambda c: c.case)
