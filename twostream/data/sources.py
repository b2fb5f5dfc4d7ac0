"""The real datasets: download (cached, resumable, verified) and extract the 12 classes.

`fetch_stanford40` and `fetch_hmdb51` fill an empty directory with the raw layout the rest of
the pipeline reads (the synthetic generator writes the same layout):

    stanford40/JPEGImages/<class>_<NNN>.jpg          the 12 classes only
    stanford40/ImageSplits/{train,test}.txt          as shipped (all 40 classes)
    hmdb51/<class>/*.avi                             the 12 classes only
    hmdb51/testTrainMulti_7030_splits/<class>_test_split{1,2,3}.txt

(names from `twostream.data.layout`). Where the archives come from is a runtime setting
(runtime.yaml `downloads`): each URL must end in the archive's official file name, and the
file is verified by content, so a mirror or a local copy gives the same data. Archives are kept
in `downloads.cache_dir` (outside the repository), so re-runs and other clones never download
twice. A download goes to `<name>.part`, is resumed with an HTTP Range request after an
interruption, and is renamed to `<name>` only once complete and verified. A URL may also be
`file://...` or a plain path: such a local copy is verified where it lies and read from there
(not copied into the cache).

Verification. An archive with a published sha256 (`KNOWN_FILES`) must match it. One without
(the Stanford 40 zips, whose site publishes none) is trusted on first use: once it has passed the
archive's own integrity check, its sha256 and size are recorded next to the cache
(`<cache_dir>/<name>.sha256.json`), and every later use, from the cache, a new download or a local
copy, must match the record; a mismatch names both hashes. A body cut short is detected by its
Content-Length, by the known or recorded size when the server sends none, and on a first download
without either only by the archive's own structure (a zip's central directory at its end and its
members' CRCs; a RAR's member offsets). Redirects go only to http(s), never from https to plain http.

Extraction stays inside its target: a member name that is absolute or has a `..` component, a
symbolic link, a name that occurs twice, or a total unpacked size above `MAX_UNPACKED_BYTES` (a zip
bomb) refuses the whole archive before anything of it is written.

HMDB51 ships as RAR. `rarfile` reads stored entries itself; compressed ones (the real
archives) need `unar` or `unrar` on the PATH, checked before anything is extracted.
Expected failures (offline, HTTP errors, bad checksums, corrupt archives, missing tools)
raise `SourceError` with a message that names the URL or file and what to do.
"""
from __future__ import annotations

import contextlib
import hashlib
import http.client
import json
import logging
import os
import re
import shutil
import time
import urllib.error
import urllib.parse
import urllib.request
import zipfile
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import rarfile
from tqdm import tqdm

from twostream.classes import HMDB51_CLASSES, STANFORD40_CLASSES
from twostream.data import layout
from twostream.errors import ListError, SourceError
from twostream.io import write_text, writing
from twostream.params import DownloadParams

try:  # POSIX: serialise concurrent downloads of one file into a shared cache
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Expected:
    """What a downloaded file must match; None means unknown (not checked). `origin` says where the
    sha256 comes from when it is not a published one (a trust-on-first-use record)."""

    size: int | None = None
    sha256: str | None = None
    md5: str | None = None
    origin: str | None = None


# Facts about the official archives, keyed by file name, so that a mirror or a local copy
# with the same name is verified too.
KNOWN_FILES: dict[str, Expected] = {
    "Stanford40_JPEGImages.zip": Expected(size=304_771_808),
    "Stanford40_ImageSplits.zip": Expected(),
    "hmdb51_org.rar": Expected(
        sha256="9e714a0d8b76104d76e932764a7ca636f929fff66279cda3f2e326fa912a328e"),
    "test_train_splits.rar": Expected(md5="15e67781e70dcfbdce2d7dbb9b3344b5"),
}

# runtime.yaml `downloads` key -> the official file name its URL must end in
ARCHIVES = {"stanford40_images_url": "Stanford40_JPEGImages.zip",
            "stanford40_splits_url": "Stanford40_ImageSplits.zip",
            "hmdb51_videos_url": "hmdb51_org.rar",
            "hmdb51_splits_url": "test_train_splits.rar"}
RAR_TOOLS_HINT = "on Debian/Ubuntu `sudo apt-get install unar`, on macOS `brew install unar`"

USER_AGENT = "twostream-downloader (python urllib)"
TIMEOUT_S = 60.0          # per socket operation; a stalled server counts as an interruption
CHUNK_BYTES = 1 << 20
RETRIES = 3               # attempts per download; each continues the .part file
RETRY_DELAY_S = 2.0       # times the attempt number
# The most one archive may unpack to: well above any real one (the largest download, hmdb51_org.rar, is
# about 2 GB of already compressed video), far below what a zip bomb claims.
MAX_UNPACKED_BYTES = 8 << 30
RECORD_SUFFIX = ".sha256.json"  # the trust-on-first-use record next to a cached archive



# --------------------------------------------------------------------------- downloads

class _Interrupted(Exception):
    """The connection ended before the whole body arrived (the .part file is kept)."""


def expected_for(url: str) -> Expected | None:
    """The known size/checksums of the file a URL or path names, if it is a known file."""
    return KNOWN_FILES.get(file_name(url))


def file_name(url: str) -> str:
    """The file name at the end of a URL or path."""
    if _is_remote(url):
        name = PurePosixPath(urllib.parse.unquote(urllib.parse.urlsplit(url).path)).name
    else:
        name = _local_path(url).name
    if not name:
        raise SourceError(f"cannot tell the file name from {url!r}: the URL must end in a file name")
    return name


def cache_dir_of(downloads: DownloadParams) -> Path:
    """`downloads.cache_dir` with `~` and environment variables expanded."""
    return Path(os.path.expandvars(os.path.expanduser(downloads.cache_dir)))


def _is_remote(url: str) -> bool:
    return urllib.parse.urlsplit(url).scheme.lower() in ("http", "https")


def _local_path(url: str) -> Path:
    parts = urllib.parse.urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme == "file":
        if parts.netloc not in ("", "localhost"):
            raise SourceError(f"{url}: file:// URLs must name a local file (file:///path)")
        return Path(urllib.request.url2pathname(parts.path))
    if "://" in url:
        raise SourceError(f"{url}: unsupported URL scheme {parts.scheme!r}; "
                          f"use http(s)://, file:// or a plain path")
    return Path(os.path.expandvars(os.path.expanduser(url)))


def _hashes(path: Path, expected: Expected) -> dict[str, str]:
    algos = [a for a in ("sha256", "md5") if getattr(expected, a)]
    if not algos:
        return {}
    digests = {a: hashlib.new(a) for a in algos}
    with open(path, "rb") as fh:
        while block := fh.read(CHUNK_BYTES):
            for d in digests.values():
                d.update(block)
    return {a: d.hexdigest() for a, d in digests.items()}


def _problem(path: Path, expected: Expected | None) -> str | None:
    """Why `path` does not match `expected` (None when it does, or nothing is known)."""
    if expected is None:
        return None
    size = path.stat().st_size
    if expected.size is not None and size != expected.size:
        return f"size mismatch: expected {expected.size:,} bytes, got {size:,}"
    if expected.sha256 or expected.md5:
        log.info("verifying %s", path)
    for algo, got in _hashes(path, expected).items():
        want = getattr(expected, algo).lower()
        if got != want:
            origin = f" ({expected.origin})" if algo == "sha256" and expected.origin else ""
            return f"checksum mismatch: expected {algo} {want}{origin}, got {got}"
    return None


# --------------------------------------------------------------------------- trust on first use

def record_of(cache_dir: Path, name: str) -> Path:
    """The trust-on-first-use record of archive `name`: `<cache_dir>/<name>.sha256.json`."""
    return Path(cache_dir) / f"{name}{RECORD_SUFFIX}"


def _read_record(record: Path, name: str) -> Expected | None:
    if not record.is_file():
        return None
    try:
        data = json.loads(record.read_text(encoding="utf-8"))
        sha, size = data["sha256"], data["size"]
        if data["file"] != name or not re.fullmatch(r"[0-9a-f]{64}", sha) or not isinstance(size, int):
            raise ValueError("unexpected fields")
    except (ValueError, KeyError, TypeError) as exc:
        raise SourceError(f"{record}: not a valid record of {name} ({exc}); delete it to trust the next download "
                          f"of {name} afresh") from None
    return Expected(size=size, sha256=sha, origin=f"recorded at its first use in {record}")


def _write_record(record: Path, name: str, path: Path, source: str) -> None:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(CHUNK_BYTES):
            digest.update(block)
    record.parent.mkdir(parents=True, exist_ok=True)
    write_text(record, json.dumps({"file": name, "size": path.stat().st_size, "sha256": digest.hexdigest(),
                                   "first_source": source}, indent=1) + "\n")
    log.warning("%s has no published sha256: trusting this copy (from %s) from now on; its sha256 %s is "
                "recorded in %s", name, source, digest.hexdigest(), record)


def _with_record(expected: Expected | None, record: Path, name: str) -> Expected | None:
    """`expected` completed by the trust-on-first-use record when no sha256 is published."""
    if expected is not None and expected.sha256:
        return expected
    recorded = _read_record(record, name)
    if recorded is None:
        return expected
    if expected is None:
        return recorded
    return Expected(size=expected.size if expected.size is not None else recorded.size, sha256=recorded.sha256,
                    md5=expected.md5, origin=recorded.origin)


def _archive_problem(path: Path, name: str) -> str | None:
    """Why `path`, archive `name`, is not a complete archive by its own structure (zip: central directory and
    every member's CRC; RAR: every member's data inside the file); None when it is, or is neither."""
    suffix = Path(name).suffix.lower()
    try:
        if suffix == ".zip":
            with zipfile.ZipFile(path) as zf:
                bad = zf.testzip()
            return f"member {bad} fails its CRC check" if bad else None
        if suffix == ".rar":
            with _open_rar(path):
                return None
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, OSError) as exc:
        return str(exc)
    except SourceError as exc:
        return str(exc)
    return None


@contextlib.contextmanager
def _locked(lock_path: Path) -> Iterator[None]:
    """Hold an exclusive lock, so two clones sharing the cache do not write one .part."""
    if fcntl is None:  # pragma: no cover
        yield
        return
    with open(lock_path, "a") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log.info("waiting for another process downloading into %s", lock_path.parent)
            fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


class _Redirects(urllib.request.HTTPRedirectHandler):
    """Follows redirects only to http(s), and never from https to plain http."""

    def __init__(self, param: str | None):
        super().__init__()
        self.param = param

    def _check(self, old_url: str, new_url: str, fp) -> None:
        old = urllib.parse.urlsplit(old_url).scheme.lower()
        new = urllib.parse.urlsplit(new_url).scheme.lower()
        if new not in ("http", "https") or (old == "https" and new != "https"):
            fp.close()
            raise SourceError(f"{old_url} redirects to {new_url}: refused (a download follows redirects only to "
                              f"http(s), never from https to plain http); download it yourself and point "
                              f"{_where(self.param)} in runtime.yaml at the local copy")

    def http_error_302(self, req, fp, code, msg, headers):
        location = headers.get("location") or headers.get("uri")
        if location:  # checked here, before urllib's own scheme check answers with its own error
            self._check(req.full_url, urllib.parse.urljoin(req.full_url, location), fp)
        return super().http_error_302(req, fp, code, msg, headers)

    http_error_301 = http_error_303 = http_error_307 = http_error_308 = http_error_302

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        self._check(req.full_url, newurl, fp)
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def _open_url(request: urllib.request.Request, param: str | None):
    return urllib.request.build_opener(_Redirects(param)).open(request, timeout=TIMEOUT_S)


def _where(param: str | None) -> str:
    return f"downloads.{param}" if param else "the matching downloads.*_url setting"


def download(url: str, cache_dir: Path, expected: Expected | None = None, *,
             param: str | None = None) -> Path:
    """The local, verified file behind `url`, downloading it into `cache_dir` if needed.

    http(s): a verified `<cache_dir>/<name>` is reused without any request; otherwise the
    body is streamed into `<name>.part` (continued with a Range request when a previous
    attempt was cut off; restarted when the server ignores Range), verified, then renamed.
    file:// or a plain path: the file is verified and returned where it is.
    Without a published sha256 in `expected`, the first copy that passes the archive's own integrity
    check is recorded in `<cache_dir>/<name>.sha256.json`, and later copies must match it.
    `param` (e.g. "hmdb51_videos_url") only makes messages name the runtime.yaml key.
    """
    name = file_name(url)
    cache_dir = Path(os.path.expandvars(os.path.expanduser(str(cache_dir))))
    record = record_of(cache_dir, name)
    if not _is_remote(url):
        path = _local_path(url)
        if not path.is_file():
            raise SourceError(f"{path}: no such file (from {url!r}; {_where(param)} in params.yaml)")
        wanted = _with_record(expected, record, name)
        problem = _problem(path, wanted)
        if problem:
            raise SourceError(f"{path}: {problem} for {name}; this local copy was left as it is: "
                              f"replace it with a good copy or point {_where(param)} elsewhere"
                              f"{_trust_hint(wanted, record)}")
        if wanted is None or not wanted.sha256:
            problem = _archive_problem(path, name)
            if problem:
                raise SourceError(f"{path} is corrupt or truncated ({problem}): replace it (a local copy) "
                                  f"and run again")
            _write_record(record, name, path, str(path))
        return path

    cache_dir.mkdir(parents=True, exist_ok=True)
    final = cache_dir / name
    part = cache_dir / f"{name}.part"
    with _locked(cache_dir / f"{name}.lock"):
        wanted = _with_record(expected, record, name)
        if final.is_file():
            problem = _problem(final, wanted)
            if problem is None:
                if wanted is None or not wanted.sha256:  # a cache from before records were kept
                    if _archive_problem(final, name) is None:
                        _write_record(record, name, final, str(final))
                        log.info("using cached %s", final)
                        return final
                else:
                    log.info("using cached %s", final)
                    return final
            log.warning("cached %s: %s; downloading it again", final, problem or "not a complete archive")
            final.unlink()
        for attempt in range(1, RETRIES + 1):
            try:
                _fetch_part(url, part, final, wanted, param)
                break
            except _Interrupted as exc:
                if attempt == RETRIES:
                    raise SourceError(
                        f"download of {url} was cut off: {exc}. The partial file {part} is "
                        f"kept: run again to resume") from None
                log.warning("download of %s was cut off (%s); resuming (attempt %d of %d)",
                            url, exc, attempt + 1, RETRIES)
                time.sleep(RETRY_DELAY_S * attempt)
        problem = _problem(part, wanted)
        if problem:
            part.unlink(missing_ok=True)
            raise SourceError(
                f"{url}: {problem}. The bad file {part} was removed: run again to download it "
                f"afresh; if this repeats, the server (or a proxy) serves a different file: get "
                f"{name} elsewhere and point {_where(param)} at the local copy{_trust_hint(wanted, record)}")
        if wanted is None or not wanted.sha256:
            problem = _archive_problem(part, name)
            if problem:
                part.unlink(missing_ok=True)
                raise SourceError(
                    f"{url}: the download is not a complete {Path(name).suffix[1:]} archive ({problem}); it was "
                    f"probably cut short (the server gave no length to check against). The file {part} was "
                    f"removed: run again to download it afresh")
            _write_record(record, name, part, url)
        os.replace(part, final)
        log.info("downloaded %s", final)
        return final


def _trust_hint(wanted: Expected | None, record: Path) -> str:
    if wanted is None or not wanted.origin:
        return ""
    return f" (if the publisher really replaced {record.name[:-len(RECORD_SUFFIX)]}, delete {record} to trust it)"


def _content_range_start(value: str | None) -> tuple[int, int | None] | None:
    """(start, total) of a `Content-Range: bytes start-end/total` header."""
    m = re.fullmatch(r"\s*bytes\s+(\d+)-\d+/(\d+|\*)\s*", value or "")
    if not m:
        return None
    return int(m.group(1)), (None if m.group(2) == "*" else int(m.group(2)))


def _fetch_part(url: str, part: Path, final: Path, expected: Expected | None,
                param: str | None) -> None:
    """Bring `part` up to the full body of `url` (raises _Interrupted if cut off)."""
    known_size = expected.size if expected else None
    for _ in range(2):  # a second pass only after discarding an unusable .part
        have = part.stat().st_size if part.is_file() else 0
        if known_size is not None and have >= known_size:
            if have == known_size:
                return  # complete already (verified by the caller)
            part.unlink()
            have = 0
        headers = {"User-Agent": USER_AGENT, "Accept-Encoding": "identity"}
        if have:
            headers["Range"] = f"bytes={have}-"
        try:
            resp = _open_url(urllib.request.Request(url, headers=headers), param)
        except urllib.error.HTTPError as exc:
            if exc.code == 416 and have:  # the .part is no prefix of this file
                log.warning("server refused to resume %s; starting again", url)
                part.unlink()
                continue
            hint = (f": check the URL ({_where(param)} in runtime.yaml)" if exc.code == 404
                    else "")
            raise SourceError(f"downloading {url} failed: HTTP {exc.code} {exc.reason}{hint}") from None
        except urllib.error.URLError as exc:
            reason = exc.reason
            host = urllib.parse.urlsplit(url).netloc
            kept = f" The partial file {part} ({have:,} bytes) is kept for resuming." if have else ""
            raise SourceError(
                f"cannot reach {host} ({reason}): download {url} on a machine with internet "
                f"and place it at {final}, or point {_where(param)} at a local copy.{kept}"
            ) from None
        except (OSError, http.client.HTTPException) as exc:
            raise _Interrupted(f"no response ({exc!r})") from None
        with resp:
            if resp.status == 206:
                rng = _content_range_start(resp.headers.get("Content-Range"))
                if rng is None or rng[0] != have:
                    log.warning("server answered a resume of %s with the wrong range; "
                                "starting again", url)
                    part.unlink()
                    continue
                total = rng[1]
                mode = "ab"
            else:
                if have:
                    log.info("server ignored the Range request for %s; starting again", url)
                have = 0
                length = resp.headers.get("Content-Length")
                total = int(length) if length and length.isdigit() else None
                mode = "wb"
            if known_size is not None and total is not None and total != known_size:
                part.unlink(missing_ok=True)
                raise SourceError(
                    f"{url} serves {total:,} bytes but {final.name} is {known_size:,} bytes: "
                    f"the URL points at a different file ({_where(param)} in runtime.yaml)")
            _stream(resp, part, mode, have, total or known_size, final.name)
        got = part.stat().st_size
        if total is not None and got < total:
            raise _Interrupted(f"the connection closed after {got:,} of {total:,} bytes")
        if known_size is not None and got < known_size:
            raise _Interrupted(f"the server stopped after {got:,} of {known_size:,} bytes")
        return
    raise _Interrupted("the server could not resume the partial file")  # pragma: no cover


def _stream(resp: http.client.HTTPResponse, part: Path, mode: str, have: int,
            total: int | None, label: str) -> None:
    with writing(part), open(part, mode) as fh, tqdm(total=total, initial=have, unit="B", unit_scale=True,
                                                     unit_divisor=1024, desc=label, mininterval=0.5) as bar:
        while True:
            try:
                chunk = resp.read(CHUNK_BYTES)
            except (OSError, http.client.HTTPException) as exc:
                fh.flush()
                raise _Interrupted(f"reading failed after {fh.tell():,} bytes ({exc!r})") from None
            if not chunk:
                return
            fh.write(chunk)
            bar.update(len(chunk))


def _check_names(downloads: DownloadParams, *fields: str) -> None:
    """Every URL of `fields` ends in its archive's official name (checked before any download)."""
    for field in fields:
        url = getattr(downloads, field)
        if file_name(url) != ARCHIVES[field]:
            raise SourceError(f"runtime.yaml: downloads.{field}: {url!r} must end in the official file name "
                              f"{ARCHIVES[field]} (a mirror or local copy keeps the name, so it is verified and "
                              f"cached as that archive)")


def _download_param(downloads: DownloadParams, field: str) -> Path:
    url = getattr(downloads, field)
    return download(url, cache_dir_of(downloads), expected_for(url), param=field)


# --------------------------------------------------------------------------- extraction

def _require_empty_dir(out_dir: Path) -> None:
    if not out_dir.is_dir():
        raise SourceError(f"{out_dir}: output directory does not exist")
    if any(out_dir.iterdir()):
        raise SourceError(f"{out_dir}: output directory must be empty")


@contextlib.contextmanager
def _emptied_on_error(out_dir: Path) -> Iterator[None]:
    """On any failure remove what was extracted, so no half-tree can pass for a result."""
    try:
        yield
    except BaseException:
        for child in out_dir.iterdir():
            if child.is_dir() and not child.is_symlink():
                shutil.rmtree(child, ignore_errors=True)
            else:
                child.unlink(missing_ok=True)
        raise


def _corrupt(archive: Path | str, exc: BaseException) -> SourceError:
    return SourceError(f"{archive} is corrupt or truncated ({exc}): delete it (a download) or "
                       f"replace it (a local copy) and run again")


def _copy_stream(src, dest: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    with writing(dest), open(dest, "wb") as dst:  # a full disk: one line naming the file
        shutil.copyfileobj(src, dst, CHUNK_BYTES)


def _unsafe_member(name: str) -> str | None:
    """Why an archive member named `name` could land outside the target directory (None: it cannot)."""
    parts = name.replace("\\", "/").split("/")
    if name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
        return "an absolute path"
    if ".." in parts:
        return "a '..' component"
    if "\0" in name:
        return "a NUL character"
    return None


def _refuse_members(archive: Path | str, members: list[tuple[str, int, bool]]) -> None:
    """Refuse an archive of `members` (name, unpacked size, is a link) before anything of it is written: a
    name that leaves the target or occurs twice, a link, or more than MAX_UNPACKED_BYTES in all."""
    seen: set[str] = set()
    total = 0
    for name, size, link in members:
        fix = "a damaged or tampered archive: delete it (a download) or replace it (a local copy) and run again"
        problem = _unsafe_member(name)
        if problem:
            raise SourceError(f"{archive}: member {name!r} would land outside the target directory ({problem}); "
                              f"{fix}")
        if link:
            raise SourceError(f"{archive}: member {name!r} is a symbolic link, which could point outside the "
                              f"target directory; {fix}")
        key = name.replace("\\", "/").rstrip("/")
        if key in seen:
            raise SourceError(f"{archive}: member {name!r} occurs twice (the last copy would silently win); {fix}")
        seen.add(key)
        total += size
    if total > MAX_UNPACKED_BYTES:
        raise SourceError(f"{archive}: its members unpack to {total:,} bytes, more than the bound of "
                          f"{MAX_UNPACKED_BYTES:,} (twostream.data.sources.MAX_UNPACKED_BYTES): not the expected "
                          f"archive (a zip bomb?); delete it (a download) or replace it (a local copy)")


def _zip_link(info: zipfile.ZipInfo) -> bool:
    return info.create_system == 3 and (info.external_attr >> 16) & 0o170000 == 0o120000  # Unix S_IFLNK


@contextlib.contextmanager
def _reading_zip(path: Path) -> Iterator[zipfile.ZipFile]:
    """Open a zip, refusing unsafe members (`_refuse_members`); a damaged one (also found while reading
    members) is a SourceError. zipfile stops each member at its declared size, which is what is bounded."""
    try:
        with zipfile.ZipFile(path) as zf:
            _refuse_members(path, [(i.filename, i.file_size, _zip_link(i)) for i in zf.infolist()])
            yield zf
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError) as exc:
        raise _corrupt(path, exc) from None


def extract_stanford40(images_zip: Path, splits_zip: Path, out_dir: Path) -> None:
    """JPEGImages of the 12 classes and ImageSplits/{train,test}.txt into `out_dir`."""
    wanted = set(STANFORD40_CLASSES)
    counts = dict.fromkeys(STANFORD40_CLASSES, 0)
    with _reading_zip(splits_zip) as zf:
        lists: dict[str, zipfile.ZipInfo] = {}
        for info in zf.infolist():
            member = PurePosixPath(info.filename)
            if member.parent.name == "ImageSplits" and member.name in ("train.txt", "test.txt"):
                if member.name in lists:
                    raise SourceError(f"{splits_zip}: two {member.name} lists ({lists[member.name].filename!r} and "
                                      f"{info.filename!r}): is it Stanford40_ImageSplits.zip?")
                lists[member.name] = info
        for name in ("train.txt", "test.txt"):
            if name not in lists:
                raise SourceError(f"{splits_zip} has no ImageSplits/{name}: "
                                  f"is it Stanford40_ImageSplits.zip?")
            with zf.open(lists[name]) as src:
                _copy_stream(src, layout.stanford40_list(out_dir, name))
    with _reading_zip(images_zip) as zf:
        written: dict[str, str] = {}
        for info in zf.infolist():
            member = PurePosixPath(info.filename)
            if info.is_dir() or member.parent.name != layout.STANFORD40_IMAGES:
                continue
            try:
                cls = layout.stanford40_class_of(member.name)
            except ListError:
                continue  # not an image of the dataset's naming scheme
            if cls not in wanted:
                continue
            if member.name in written:
                raise SourceError(f"{images_zip}: members {written[member.name]!r} and {info.filename!r} would both "
                                  f"be {layout.stanford40_image(member.name)}: is it Stanford40_JPEGImages.zip?")
            written[member.name] = info.filename
            with zf.open(info) as src:
                _copy_stream(src, out_dir / layout.stanford40_image(member.name))
            counts[cls] += 1
    missing = [c for c, n in counts.items() if n == 0]
    if missing:
        raise SourceError(f"{images_zip} has no images of {', '.join(missing)} "
                          f"(expected JPEGImages/<class>_<NNN>.jpg): is it Stanford40_JPEGImages.zip?")
    for name in layout.STANFORD40_LIST_FILES:
        if layout.stanford40_list(out_dir, name).stat().st_size == 0:
            raise SourceError(f"{splits_zip}: ImageSplits/{name} is empty")
    log.info("Stanford40: %d images of %d classes", sum(counts.values()), len(counts))


@contextlib.contextmanager
def _open_rar(path: Path, label: str | None = None) -> Iterator[rarfile.RarFile]:
    label = label or str(path)
    try:
        rf = rarfile.RarFile(path, errors="strict")
    except rarfile.Error as exc:
        raise _corrupt(label, exc) from None
    with rf:
        # rarfile ends the listing quietly at EOF; a member whose data runs past the end of
        # the file means the archive was cut short.
        size = Path(path).stat().st_size
        end = max((getattr(i, "data_offset", 0) + i.compress_size for i in rf.infolist()),
                  default=0)
        if end > size:
            raise _corrupt(label, f"the file has {size:,} bytes, its members need {end:,}")
        _refuse_members(label, [(i.filename, i.file_size, _rar_link(i)) for i in rf.infolist()])
        yield rf


def _rar_link(info: rarfile.RarInfo) -> bool:
    return bool(info.is_symlink()) or getattr(info, "file_redir", None) is not None


def _needs_tool(info: rarfile.RarInfo) -> bool:
    """rarfile reads only stored, unencrypted entries without an external tool."""
    return (info.compress_type != rarfile.RAR_M0 or info.needs_password()
            or getattr(info, "file_redir", None) is not None)


def require_rar_tool(archive: Path | str, infos: Iterable[rarfile.RarInfo]) -> None:
    """Fail before extracting anything when `infos` need a tool and none works.

    Only unrar and unar are accepted: bsdtar cannot read solid RARs, and 7z reads RAR only
    with an optional codec; `rarfile` then uses the tool found here for every entry.
    """
    if not any(_needs_tool(i) for i in infos):
        return
    try:
        rarfile.tool_setup(unrar=True, unar=True, bsdtar=False, sevenzip=False,
                           sevenzip2=False, force=True)
    except rarfile.RarCannotExec:
        raise SourceError(f"extracting {Path(str(archive)).name} needs unar or unrar: "
                          f"{RAR_TOOLS_HINT}") from None


def _rar_member(rf: rarfile.RarFile, archive: Path | str, info: rarfile.RarInfo,
                dest: Path) -> None:
    try:
        with rf.open(info) as src:
            _copy_stream(src, dest)
    except rarfile.RarCannotExec:
        raise SourceError(f"extracting {Path(str(archive)).name} needs unar or unrar: "
                          f"{RAR_TOOLS_HINT}") from None
    except rarfile.Error as exc:
        raise _corrupt(f"{archive} (member {info.filename})", exc) from None


def _by_name(rf: rarfile.RarFile) -> dict[str, rarfile.RarInfo]:
    return {PurePosixPath(i.filename).name: i for i in rf.infolist() if not i.is_dir()}


def extract_inner_rar(outer: rarfile.RarFile, outer_path: Path, info: rarfile.RarInfo,
                      dest_dir: Path, scratch: Path, suffix: str = ".avi",
                      room: int = MAX_UNPACKED_BYTES) -> list[Path]:
    """Extract the `suffix` files of the RAR stored as member `info` of `outer` into `dest_dir`.

    HMDB51's `<class>.rar` members are themselves RARs of compressed `.avi` clips: the inner
    RAR is copied to `scratch` (rarfile reads archives from files), checked, its matching
    members are extracted flat (by base name) into `dest_dir`, and the copy is removed again.
    Compressed members need unar or unrar (checked before any is extracted). Returns the
    extracted paths in archive order. `room`: the bytes still allowed to unpack (MAX_UNPACKED_BYTES over
    all inner archives of one outer one); two members of one base name are refused.
    """
    inner_path = scratch / PurePosixPath(info.filename).name
    label = f"{outer_path} (member {info.filename})"
    try:
        _rar_member(outer, outer_path, info, inner_path)
        with _open_rar(inner_path, label) as rf:
            members = [i for i in rf.infolist()
                       if not i.is_dir() and i.filename.lower().endswith(suffix.lower())]
            if not members:
                raise SourceError(f"{label} holds no {suffix} files")
            names = [PurePosixPath(m.filename).name for m in members]
            twice = next((n for n in names if names.count(n) > 1), None)
            if twice:
                raise SourceError(f"{label}: two members named {twice} (the last would silently win): a damaged "
                                  f"or tampered archive; delete it (a download) or replace it and run again")
            total = sum(m.file_size for m in members)
            if total > room:
                raise SourceError(f"{label}: its videos unpack to {total:,} bytes, more than the {room:,} left of "
                                  f"the bound of {MAX_UNPACKED_BYTES:,} for {outer_path.name} "
                                  f"(twostream.data.sources.MAX_UNPACKED_BYTES): a zip bomb?; delete it and run again")
            require_rar_tool(outer_path, members)
            paths = []
            for m in members:
                paths.append(dest_dir / PurePosixPath(m.filename).name)
                _rar_member(rf, label, m, paths[-1])
    finally:
        inner_path.unlink(missing_ok=True)
    return paths


def extract_hmdb51(videos_rar: Path, splits_rar: Path, out_dir: Path) -> None:
    """`<class>/*.avi` and the 36 split files of the 12 classes into `out_dir`."""
    split_names = [layout.hmdb51_list_name(c, k) for c in HMDB51_CLASSES for k in layout.HMDB51_FOLDS]
    with _open_rar(videos_rar) as outer, _open_rar(splits_rar) as splits:
        outer_members, split_members = _by_name(outer), _by_name(splits)
        missing = [f"{c}.rar" for c in HMDB51_CLASSES if f"{c}.rar" not in outer_members]
        if missing:
            raise SourceError(f"{videos_rar} lacks {', '.join(missing)}: is it hmdb51_org.rar "
                              f"(a RAR of per-class RARs)? If it was cut short, delete it and "
                              f"run again")
        missing = [n for n in split_names if n not in split_members]
        if missing:
            raise SourceError(f"{splits_rar} lacks {', '.join(missing[:4])}"
                              f"{' ...' if len(missing) > 4 else ''}: is it test_train_splits.rar?")
        inner = [outer_members[f"{c}.rar"] for c in HMDB51_CLASSES]
        require_rar_tool(videos_rar, inner)
        require_rar_tool(splits_rar, [split_members[n] for n in split_names])

        for name in split_names:
            _rar_member(splits, splits_rar, split_members[name],
                        out_dir / layout.HMDB51_LISTS / name)
        scratch = out_dir / ".inner-rar"
        scratch.mkdir()
        room = MAX_UNPACKED_BYTES
        try:
            for cls, info in zip(HMDB51_CLASSES, inner):
                videos = extract_inner_rar(outer, videos_rar, info, out_dir / cls, scratch, room=room)
                room -= sum(p.stat().st_size for p in videos)
                log.info("HMDB51 %s: %d videos", cls, len(videos))
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
    _check_hmdb51(out_dir, splits_rar)


def _check_hmdb51(out_dir: Path, splits_rar: Path) -> None:
    for cls in HMDB51_CLASSES:
        videos = {p.name for p in (out_dir / cls).glob("*.avi") if p.stat().st_size > 0}
        if not videos:
            raise SourceError(f"HMDB51 class {cls} has no non-empty videos after extraction")
        for k in layout.HMDB51_FOLDS:
            path = layout.hmdb51_list(out_dir, cls, k)
            listed = {line.split()[0] for line in path.read_text(errors="replace").splitlines()
                      if line.strip()}
            if not listed:
                raise SourceError(f"{splits_rar}: {path.name} is empty")
            absent = sorted(listed - videos)
            if absent:  # the split stage decides; this only makes a mismatch visible early
                log.warning("%s lists %d video(s) not in the archive, e.g. %s",
                            path.name, len(absent), absent[0])


# --------------------------------------------------------------------------- the two datasets

def _fetch(out_dir: Path, downloads: DownloadParams, fields: tuple[str, str],
           extract: Callable[[Path, Path, Path], None]) -> None:
    """Download (or reuse) the two archives named by `fields`, then `extract` them into `out_dir`,
    which must exist and be empty; on failure it is emptied again."""
    out_dir = Path(out_dir)
    _require_empty_dir(out_dir)
    _check_names(downloads, *fields)
    archives = [_download_param(downloads, field) for field in fields]
    with _emptied_on_error(out_dir):
        extract(*archives, out_dir)


def fetch_stanford40(out_dir: Path, downloads: DownloadParams) -> None:
    """The Stanford40 zips (images, lists), extracted for the 12 classes into `out_dir`."""
    _fetch(out_dir, downloads, ("stanford40_images_url", "stanford40_splits_url"), extract_stanford40)


def fetch_hmdb51(out_dir: Path, downloads: DownloadParams) -> None:
    """The HMDB51 RARs (videos, split lists), extracted for the 12 classes into `out_dir`."""
    _fetch(out_dir, downloads, ("hmdb51_videos_url", "hmdb51_splits_url"), extract_hmdb51)
