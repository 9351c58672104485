"""HTTP for the download step: resumable, checksummed downloads, and reading single members of a remote zip.

Standard library only (urllib): one less dependency, and the two things we need are not in any one client's
defaults anyway: resuming into a `.part` file with a Range request, and a seekable file over Range requests that
`zipfile` can read, so that a 3 GB archive of which we want ten cases costs megabytes, not gigabytes.
"""

from __future__ import annotations

import hashlib
import http.client
import io
import json
import os
import re
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Callable, TypeVar

from tqdm import tqdm

CHUNK = 1 << 20
USER_AGENT = "abdoseg (https://github.com/abdoseg)"
RETRY_STATUS = {408, 425, 429, 500, 502, 503, 504}  # worth another try; any other HTTP error is final
RANGE_REQUEST_INTERVAL_S = 1.0  # Zenodo allows about 60 requests a minute
T = TypeVar("T")


class ChecksumError(ValueError):
    """A downloaded file whose hash is not the published one."""


class DownloadError(RuntimeError):
    """A transfer that failed for good: after every retry, or with an HTTP error that no retry will change."""


class IncompleteRead(ConnectionError):
    """The server closed the connection before the announced length."""


def _request(url: str, start: int | None = None, end: int | None = None) -> urllib.request.Request:
    headers = {"User-Agent": USER_AGENT}
    if start is not None:
        headers["Range"] = f"bytes={start}-" + ("" if end is None else str(end))
    return urllib.request.Request(url, headers=headers)


def retrying(what: str, attempt: Callable[[], T], retries: int, backoff: float) -> T:
    """Run `attempt`, retrying network errors with exponential backoff (or the server's Retry-After); then a
    DownloadError that says what failed. Local errors (disk full, permissions) are not retried."""
    for i in range(retries + 1):
        try:
            return attempt()
        except urllib.error.HTTPError as err:
            if err.code not in RETRY_STATUS:
                raise DownloadError(f"{what}: HTTP {err.code} {err.reason}") from err
            failure, retry_after = err, err.headers.get("Retry-After")
        except (urllib.error.URLError, ConnectionError, TimeoutError, http.client.HTTPException) as err:
            failure, retry_after = err, None
        if i == retries:
            raise DownloadError(f"{what}: failed after {retries + 1} attempts: {failure}") from failure
        wait = float(retry_after) if retry_after and retry_after.isdigit() else backoff * 2 ** i
        print(f"{what}: {failure}; retrying in {wait:.1f} s ({i + 1}/{retries})", flush=True)
        time.sleep(wait)
    raise AssertionError("unreachable")


def md5sum(path: str | os.PathLike) -> str:
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "md5").hexdigest()


def zenodo_md5(url: str, api: str = "https://zenodo.org", retries: int = 2, backoff: float = 1.0) -> str | None:
    """The md5 Zenodo publishes for a file of a record (its records API), or None for a URL that is not Zenodo's."""
    m = re.match(r"https://zenodo\.org/records?/(\d+)/files/([^?/]+)", url)
    if not m:
        return None
    record, name = m.groups()

    def attempt() -> str | None:
        with urllib.request.urlopen(_request(f"{api}/api/records/{record}"), timeout=60) as resp:
            files = json.load(resp).get("files", [])
        return next((f["checksum"].split(":", 1)[1] for f in files if f.get("key") == name), None)

    return retrying(f"checksum lookup of {name} in Zenodo record {record}", attempt, retries, backoff)


def fetch(url: str, dest: str | os.PathLike, md5: str | None = None, retries: int = 4, backoff: float = 1.0) -> Path:
    """Download `url` to `dest` with a progress bar; resume a previous partial transfer; verify `md5`.

    The bytes go to `dest.part` and are renamed to `dest` only once complete and verified, so `dest` is never
    half-written. An existing `dest` with the right checksum is kept as it is.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    if dest.exists() and md5 is not None and md5sum(dest) == md5:
        print(f"{dest.name}: already downloaded, md5 checked", flush=True)
        return dest
    part = dest.with_name(dest.name + ".part")

    def attempt() -> None:
        have = part.stat().st_size if part.exists() else 0
        try:
            resp = urllib.request.urlopen(_request(url, have if have else None), timeout=60)
        except urllib.error.HTTPError as err:
            if err.code != 416 or not have:
                raise
            # nothing left to send from `have` on: the .part is complete (check the md5), or too long (restart)
            total = re.search(r"/(\d+)", err.headers.get("Content-Range", "") or "")
            if total is None or int(total.group(1)) != have:
                part.unlink()
                raise IncompleteRead(f"the partial file ({have} bytes) does not fit the resource; starting again")
            return
        with resp:
            if have and not (resp.status == 206 and
                             (resp.headers.get("Content-Range") or "").startswith(f"bytes {have}-")):
                have = 0  # the server ignored the Range header (or answered another range): start again
            length = resp.headers.get("Content-Length")
            total = int(length) + have if length is not None else None
            with open(part, "ab" if have else "wb") as fh, tqdm(total=total, initial=have, unit="B", unit_scale=True,
                                                                 desc=dest.name, mininterval=1.0) as bar:
                while block := resp.read(CHUNK):
                    fh.write(block)
                    bar.update(len(block))
        if total is not None and part.stat().st_size < total:
            raise IncompleteRead(f"got {part.stat().st_size} of {total} bytes")

    retrying(f"download of {url}", attempt, retries, backoff)
    if md5 is not None:
        got = md5sum(part)
        if got != md5:
            part.unlink()
            raise ChecksumError(f"{dest.name} from {url}: md5 {got} does not match the expected {md5}; "
                                f"the partial file was removed, run again to download it anew")
    else:
        print(f"{dest.name}: no published md5 to check it against (set data.md5 to check it)", flush=True)
    os.replace(part, dest)
    return dest


def supports_range(url: str, retries: int = 2, backoff: float = 0.5) -> tuple[bool, int]:
    """Whether the server answers a Range request with 206 Partial Content, and the resource's size."""
    def attempt() -> tuple[bool, int]:
        with urllib.request.urlopen(_request(url, 0, 0), timeout=60) as resp:
            if resp.status == 206:
                return True, int(resp.headers["Content-Range"].rsplit("/", 1)[1])
            return False, int(resp.headers.get("Content-Length") or 0)

    return retrying(f"range probe of {url}", attempt, retries, backoff)


class RemoteFile(io.RawIOBase):
    """A read-only, seekable file over HTTP Range requests, for `zipfile.ZipFile` (counts the bytes it moves).

    Reads are served from one buffer: `prefetch` fills it with a whole span of members in one request, other
    reads fetch at least `block` bytes ahead. Requests are spaced `min_interval` seconds apart, since Zenodo
    allows about one a second (and answers 429 beyond, which `retrying` waits out).
    """

    def __init__(self, url: str, size: int, retries: int = 6, backoff: float = 2.0, block: int = 1 << 20,
                 min_interval: float | None = None):
        super().__init__()
        self.url, self.size, self.retries, self.backoff, self.block = url, size, retries, backoff, block
        self.min_interval = RANGE_REQUEST_INTERVAL_S if min_interval is None else min_interval
        self.pos = 0
        self.bytes_transferred = 0
        self.requests = 0
        self._buf_start, self._buf = 0, b""
        self._last = 0.0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self.pos, io.SEEK_END: self.size}[whence]
        self.pos = max(0, base + offset)
        return self.pos

    def _get(self, start: int, end: int) -> bytes:
        def attempt() -> bytes:
            time.sleep(max(0.0, self._last + self.min_interval - time.monotonic()))
            self._last = time.monotonic()
            with urllib.request.urlopen(_request(self.url, start, end - 1), timeout=120) as resp:
                if resp.status != 206:
                    raise DownloadError(f"{self.url}: the server stopped honouring Range requests")
                data = resp.read()
            if len(data) != end - start:
                raise IncompleteRead(f"bytes {start}-{end - 1}: got {len(data)}")
            return data

        data = retrying(f"range read of {self.url}", attempt, self.retries, self.backoff)
        self.bytes_transferred += len(data)
        self.requests += 1
        return data

    def buffered(self, start: int, end: int) -> bool:
        return self._buf_start <= start and end <= self._buf_start + len(self._buf)

    def prefetch(self, start: int, end: int) -> None:
        """Load bytes [start, end) in one request, unless they are buffered already."""
        end = min(end, self.size)
        if not self.buffered(start, end):
            self._buf_start, self._buf = start, self._get(start, end)

    def read(self, n: int = -1) -> bytes:
        if n is None or n < 0:
            n = self.size - self.pos
        n = min(n, self.size - self.pos)
        if n <= 0:
            return b""
        lo, hi = self.pos, self.pos + n
        if not self.buffered(lo, hi):
            tail = self.size - (1 << 16)  # zipfile's first reads hunt for the end records: take the last 64 kB at once
            self.prefetch(min(lo, max(tail, 0)) if lo >= tail else lo, max(hi, lo + self.block))
        out = self._buf[lo - self._buf_start:hi - self._buf_start]
        self.pos = hi
        return out

    def readinto(self, b) -> int:
        data = self.read(len(b))
        b[:len(data)] = data
        return len(data)
