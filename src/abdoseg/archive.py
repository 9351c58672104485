"""Safe unpacking of zip and tar archives, member by member: only the members asked for, nothing outside the target.

tarfile's `filter="data"` and zipfile's name sanitising each cover part of this; one check for both archive
kinds keeps the rules in one place: no absolute or `..` paths, no links or devices, and a cap on the unpacked
size against archive bombs (declared sizes are checked first, the bytes actually written as they come).
"""

from __future__ import annotations

import os
import tarfile
import zipfile
from pathlib import Path, PurePosixPath
from typing import BinaryIO, Iterable

from tqdm import tqdm

from . import files

DEFAULT_MAX_BYTES = 8 << 30  # per member: a CT with its labels is well below 2 GB


class UnsafeArchiveError(ValueError):
    """An archive member that would escape the target folder, is a link or device, or is too big."""


def safe_relpath(name: str) -> PurePosixPath:
    """The member's path relative to the target folder, or UnsafeArchiveError."""
    path = PurePosixPath(name.replace("\\", "/"))
    if path.is_absolute() or ".." in path.parts or (path.parts and ":" in path.parts[0]):
        raise UnsafeArchiveError(f"archive member {name!r} would be written outside the target folder")
    return path


def _copy_capped(src: BinaryIO, dest: Path, name: str, max_bytes: int) -> None:
    written = 0
    with files.atomic_path(dest) as tmp, open(tmp, "wb") as out:
        while block := src.read(1 << 20):
            written += len(block)
            if written > max_bytes:
                raise UnsafeArchiveError(f"archive member {name!r} unpacks to more than {max_bytes} bytes")
            out.write(block)


def zip_names(zf: zipfile.ZipFile) -> list[str]:
    return [i.filename for i in zf.infolist() if not i.is_dir()]


MERGE_GAP = 8 << 20  # remote zip: members closer than this are fetched in one request (one case's files, mostly)
MAX_SPAN = 1 << 30  # ... as long as the request stays below this


def _member_end(info: zipfile.ZipInfo) -> int:
    """An upper bound of where a member's bytes end (local header, name, extra field and data, with slack)."""
    return info.header_offset + 30 + 2 * len(info.filename.encode()) + len(info.extra) + info.compress_size + 4096


def extract_zip_members(zf: zipfile.ZipFile, names: Iterable[str], target: str | os.PathLike,
                        max_bytes: int = DEFAULT_MAX_BYTES) -> list[Path]:
    """Extract `names` from an open zip into `target`; a member already there with the right size is skipped.

    zipfile checks each member's CRC-32 as it reads it, so a corrupted member fails here, by name. Over a
    RemoteFile, members are taken in archive order and neighbours are fetched together (few HTTP requests).
    """
    infos = sorted((zf.getinfo(n) for n in names), key=lambda i: i.header_offset)
    prefetch = getattr(zf.fp, "prefetch", None)
    out = []
    for k, info in enumerate(tqdm(infos, desc="unpacking", unit="file", mininterval=1.0)):
        name = info.filename
        dest = Path(target) / safe_relpath(name)
        if (info.external_attr >> 16) & 0o170000 == 0o120000:
            raise UnsafeArchiveError(f"archive member {name!r} is a symbolic link")
        if max(info.file_size, info.compress_size) > max_bytes:
            raise UnsafeArchiveError(f"archive member {name!r} declares {info.file_size} bytes, over {max_bytes}")
        if not (dest.exists() and dest.stat().st_size == info.file_size):
            dest.parent.mkdir(parents=True, exist_ok=True)
            if prefetch is not None and not zf.fp.buffered(info.header_offset, _member_end(info)):
                end = _member_end(info)
                for nxt in infos[k + 1:]:
                    if nxt.header_offset - end > MERGE_GAP or _member_end(nxt) - info.header_offset > MAX_SPAN:
                        break
                    end = _member_end(nxt)
                prefetch(info.header_offset, end)
            with zf.open(info) as src:
                _copy_capped(src, dest, name, max_bytes)
        out.append(dest)
    return out


def tar_names(tf: tarfile.TarFile) -> list[str]:
    return [m.name for m in tf.getmembers() if not m.isdir()]


def extract_tar_members(tf: tarfile.TarFile, names: Iterable[str], target: str | os.PathLike,
                        max_bytes: int = DEFAULT_MAX_BYTES) -> list[Path]:
    """Extract `names` (regular files only) from an open tar into `target`."""
    out = []
    for name in tqdm(list(names), desc="unpacking", unit="file", mininterval=1.0):
        member = tf.getmember(name)
        dest = Path(target) / safe_relpath(name)
        if not member.isfile():
            raise UnsafeArchiveError(f"archive member {name!r} is a link or special file, not a regular file")
        if member.size > max_bytes:
            raise UnsafeArchiveError(f"archive member {name!r} declares {member.size} bytes, over {max_bytes}")
        if not (dest.exists() and dest.stat().st_size == member.size):
            dest.parent.mkdir(parents=True, exist_ok=True)
            src = tf.extractfile(member)
            assert src is not None  # a regular file always has a stream
            _copy_capped(src, dest, name, max_bytes)
        out.append(dest)
    return out


def open_archive(path: str | os.PathLike) -> zipfile.ZipFile | tarfile.TarFile:
    """Open a local zip or tar (any compression) for listing and member extraction."""
    if zipfile.is_zipfile(path):
        return zipfile.ZipFile(path)
    if tarfile.is_tarfile(path):
        return tarfile.open(path)
    raise ValueError(f"{path}: neither a zip nor a tar archive")


def names(archive: zipfile.ZipFile | tarfile.TarFile) -> list[str]:
    return zip_names(archive) if isinstance(archive, zipfile.ZipFile) else tar_names(archive)


def extract(archive: zipfile.ZipFile | tarfile.TarFile, members: Iterable[str], target: str | os.PathLike,
            max_bytes: int = DEFAULT_MAX_BYTES) -> list[Path]:
    """Extract members from either kind of archive."""
    if isinstance(archive, zipfile.ZipFile):
        return extract_zip_members(archive, members, target, max_bytes)
    return extract_tar_members(archive, members, target, max_bytes)
