"""Real-data sources, offline: archives built here in the real layouts, served from 127.0.0.1.

No free tool writes RAR, so `rar4` below writes stored (uncompressed) RAR 4.x archives,
which rarfile reads without an external tool. Compressed RAR data, which only unar or unrar
can decode, comes from one small archive of rarfile's own test files (tests/fixtures/rar/).
Tests that need unar skip without it, or fail where TWOSTREAM_REQUIRE_RAR_TOOL=1 (.ci/run).
"""
from __future__ import annotations

import hashlib
import io
import os
import re
import shutil
import socket
import struct
import threading
import zipfile
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import dataclasses

import pytest
import rarfile

from twostream.classes import HMDB51_CLASSES, STANFORD40_CLASSES
from twostream.data import layout, sources
from twostream.data.sources import ARCHIVES, Expected, download, fetch_hmdb51, fetch_stanford40
from twostream.errors import SourceError
from twostream.params import DownloadParams, load_runtime

EXTRA_STANFORD40 = ("brushing_teeth", "texting_message")   # in the zip, not in our 12
EXTRA_HMDB51 = ("brush_hair", "cartwheel")

# A solid RAR 3.x/4.x archive whose two members are compressed ("normal", method 0x33); both
# hold SOLID_RAR_TEXT. Origin, licence and checksums: tests/fixtures/rar/README.md.
FIXTURES = Path(__file__).parent / "fixtures" / "rar"
SOLID_RAR = FIXTURES / "rar3-solid.rar"
SOLID_RAR_SHA256 = "0944932546b994f282cdb3ac724112c312d406b4c1aecfe1eaf9e734e8f96aa2"
SOLID_RAR_MEMBERS = ("stest1.txt", "stest2.txt")
SOLID_RAR_TEXT = b"".join(b"%03d\n" % i for i in range(512))  # "000\n" ... "511\n", 2048 bytes
SOLID_RAR_TEXT_SHA256 = "2eaebb4c18cdef7f20089f8a2fa3475bc59c2a193f66e2f1513609a4bef13e22"

REQUIRE_RAR_TOOL = "TWOSTREAM_REQUIRE_RAR_TOOL"


# --------------------------------------------------------------------------- RAR 4 writer

def _dos_time(year=2013, month=10, day=1, hour=12, minute=0, second=0) -> int:
    return ((year - 1980) << 25 | month << 21 | day << 16 | hour << 11 | minute << 5
            | second // 2)


def _block(head_type: int, flags: int, fields: bytes = b"") -> bytes:
    """A RAR 4 block header: HEAD_CRC (low 16 bits of CRC32 of the rest), TYPE, FLAGS, SIZE."""
    body = struct.pack("<BHH", head_type, flags, 7 + len(fields)) + fields
    return struct.pack("<H", zlib.crc32(body) & 0xFFFF) + body


def rar4(entries: list[tuple[str, bytes | None]], method: int = 0x30, links: frozenset[str] = frozenset()) -> bytes:
    """A RAR 4.x archive of `entries` (name, data; data None for a directory).

    method 0x30 is "store"; any other value only labels the (uncompressed) data as
    compressed, which is enough to test the missing-tool path. Entries named in `links` are
    Unix symbolic links (their data is the link's target).
    """
    out = bytearray(b"Rar!\x1a\x07\x00")                      # marker block
    out += _block(0x73, 0, b"\0" * 6)                          # archive header
    for name, data in entries:
        is_dir = data is None
        data = b"" if is_dir else data
        raw_name = name.replace("/", "\\").encode()
        flags = 0x8000 | (0x00E0 if is_dir else 0)             # LONG_BLOCK (+ directory)
        fields = struct.pack(
            "<LLBLLBBHL",
            len(data), len(data),                              # PACK_SIZE, UNP_SIZE
            3 if name in links else 2,                         # HOST_OS: Unix for a link, else Win32
            zlib.crc32(data), _dos_time(),                     # FILE_CRC, FTIME
            29, method, len(raw_name),                         # UNP_VER, METHOD, NAME_SIZE
            0o120777 if name in links else 0x10 if is_dir else 0x20,  # ATTR (Unix: st_mode)
        ) + raw_name
        out += _block(0x74, flags, fields) + data
    out += _block(0x7B, 0x4000)                                # end of archive
    return bytes(out)


def test_rar4_writer_is_read_by_rarfile():
    data = rar4([("d", None), ("d/a.txt", b"hello"), ("b.bin", bytes(range(256)))])
    with rarfile.RarFile(io.BytesIO(data), errors="strict") as rf:
        assert [i.filename for i in rf.infolist()] == ["d/", "d/a.txt", "b.bin"]
        assert rf.read("d/a.txt") == b"hello"
        assert rf.read("b.bin") == bytes(range(256))


# --------------------------------------------------------------------------- fake datasets

def video_bytes(cls: str, i: int) -> bytes:
    return b"RIFF" + f"{cls}-{i}".encode() * 50


def hmdb51_archives(classes=HMDB51_CLASSES + EXTRA_HMDB51, videos=3,
                    method=0x30) -> tuple[bytes, bytes]:
    """(hmdb51_org.rar, test_train_splits.rar) in the official nesting."""
    inner = []
    splits = [("testTrainMulti_7030_splits", None)]
    for cls in classes:
        names = [f"{cls}_clip_{i}.avi" for i in range(videos)]
        inner_rar = rar4([(cls, None)] + [(f"{cls}/{n}", video_bytes(cls, i))
                                          for i, n in enumerate(names)], method=method)
        inner.append((f"{cls}.rar", inner_rar))
        for k in (1, 2, 3):
            text = "".join(f"{n} {(i + k) % 3} \n" for i, n in enumerate(names))
            splits.append((f"testTrainMulti_7030_splits/{cls}_test_split{k}.txt", text.encode()))
    return rar4(inner), rar4(splits, method=method)


def stanford40_archives(classes=STANFORD40_CLASSES + EXTRA_STANFORD40,
                        images=3) -> tuple[bytes, bytes]:
    """(Stanford40_JPEGImages.zip, Stanford40_ImageSplits.zip) in the official layout."""
    names = [f"{c}_{i:03d}.jpg" for c in classes for i in range(1, images + 1)]
    img = io.BytesIO()
    with zipfile.ZipFile(img, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("JPEGImages/", b"")
        for n in names:
            zf.writestr(f"JPEGImages/{n}", b"\xff\xd8\xff" + n.encode() * 20)
        zf.writestr("__MACOSX/JPEGImages/._applauding_001.jpg", b"junk")
    spl = io.BytesIO()
    with zipfile.ZipFile(spl, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("ImageSplits/actions.txt", "action_name\tnumber_of_images\n")
        zf.writestr("ImageSplits/train.txt", "".join(n + "\n" for n in names[::2]))
        zf.writestr("ImageSplits/test.txt", "".join(n + "\n" for n in names[1::2]))
        zf.writestr("ImageSplits/applauding_train.txt", "applauding_001.jpg\n")
    return img.getvalue(), spl.getvalue()


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def tree(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}


# --------------------------------------------------------------------------- HTTP server

class _Handler(BaseHTTPRequestHandler):
    timeout = 5  # a stuck client cannot hold a server thread forever

    def log_message(self, *args):  # keep test output quiet
        pass

    def do_GET(self):
        state = self.server.state
        state.requests.append((self.path, dict(self.headers)))
        if self.path in state.redirects:
            code, target = state.redirects[self.path]
            self.send_response(code)
            self.send_header("Location", target)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if self.path not in state.files:
            self.send_error(404)
            return
        data = state.files[self.path]
        start = 0
        m = re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range", ""))
        if m and self.path not in state.ignore_range:
            start = int(m.group(1))
            if start >= len(data):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(data)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        body = data[start:]
        if self.path not in state.no_length:  # else the body ends when the connection closes (HTTP/1.0)
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if state.cuts.get(self.path, 0) > 0:  # promise the whole body, send half, hang up
            state.cuts[self.path] -= 1
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(body)


class Server:
    def __init__(self):
        self.files: dict[str, bytes] = {}
        self.redirects: dict[str, tuple[int, str]] = {}
        self.ignore_range: set[str] = set()
        self.cuts: dict[str, int] = {}
        self.no_length: set[str] = set()
        self.requests: list[tuple[str, dict[str, str]]] = []
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.httpd.daemon_threads = True
        self.httpd.state = self
        self.thread = threading.Thread(target=self.httpd.serve_forever,
                                       kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_port}{path}"

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)


@pytest.fixture
def server():
    srv = Server()
    yield srv
    srv.close()


@pytest.fixture(autouse=True)
def fast_retries(monkeypatch):
    monkeypatch.setattr(sources, "RETRY_DELAY_S", 0.0)
    monkeypatch.setattr(sources, "TIMEOUT_S", 5.0)


def download_params(cache: Path, **urls: str) -> DownloadParams:
    """runtime.yaml `downloads`; URLs not given point at absent files of the official names."""
    defaults = {f: f"file:///nonexistent/{name}" for f, name in ARCHIVES.items()}
    return DownloadParams(cache_dir=str(cache), **{**defaults, **urls})


PAYLOAD = bytes(range(256)) * 400  # 100 KiB


# --------------------------------------------------------------------------- download

def test_download_verifies_and_reuses_the_cache(server, tmp_path):
    server.files["/d/data.bin"] = PAYLOAD
    expected = Expected(size=len(PAYLOAD), sha256=sha256(PAYLOAD),
                        md5=hashlib.md5(PAYLOAD).hexdigest())
    path = download(server.url("/d/data.bin"), tmp_path / "cache", expected)
    assert path == tmp_path / "cache" / "data.bin"
    assert path.read_bytes() == PAYLOAD
    assert not (tmp_path / "cache" / "data.bin.part").exists()
    assert len(server.requests) == 1
    again = download(server.url("/d/data.bin"), tmp_path / "cache", expected)
    assert again == path
    assert len(server.requests) == 1  # no request: the verified cached file was reused


def test_resume_after_a_cut_connection(server, tmp_path):
    server.files["/data.bin"] = PAYLOAD
    server.cuts["/data.bin"] = 1
    path = download(server.url("/data.bin"), tmp_path, Expected(sha256=sha256(PAYLOAD)))
    assert path.read_bytes() == PAYLOAD
    assert len(server.requests) == 2
    assert "Range" not in server.requests[0][1]
    assert server.requests[1][1]["Range"] == f"bytes={len(PAYLOAD) // 2}-"


def test_cut_download_keeps_part_and_the_next_run_resumes(server, tmp_path, monkeypatch):
    monkeypatch.setattr(sources, "RETRIES", 1)
    server.files["/data.bin"] = PAYLOAD
    server.cuts["/data.bin"] = 1
    with pytest.raises(SourceError, match=r"cut off.*partial file .*data\.bin\.part is kept") as err:
        download(server.url("/data.bin"), tmp_path, Expected(size=len(PAYLOAD)))
    assert server.url("/data.bin") in str(err.value)
    assert (tmp_path / "data.bin.part").stat().st_size == len(PAYLOAD) // 2
    assert not (tmp_path / "data.bin").exists()
    path = download(server.url("/data.bin"), tmp_path, Expected(size=len(PAYLOAD)))
    assert server.requests[-1][1]["Range"] == f"bytes={len(PAYLOAD) // 2}-"
    assert path.read_bytes() == PAYLOAD


def test_server_ignoring_range_restarts_from_zero(server, tmp_path):
    server.files["/data.bin"] = PAYLOAD
    server.ignore_range.add("/data.bin")
    (tmp_path / "data.bin.part").write_bytes(b"x" * 1000)  # not even a prefix of the file
    path = download(server.url("/data.bin"), tmp_path, Expected(sha256=sha256(PAYLOAD)))
    assert server.requests[0][1]["Range"] == "bytes=1000-"
    assert path.read_bytes() == PAYLOAD


def test_unusable_part_answered_416_restarts(server, tmp_path):
    server.files["/data.bin"] = PAYLOAD
    (tmp_path / "data.bin.part").write_bytes(b"x" * (len(PAYLOAD) + 10))  # longer than the file
    path = download(server.url("/data.bin"), tmp_path)
    assert [r[1].get("Range") for r in server.requests] == [f"bytes={len(PAYLOAD) + 10}-", None]
    assert path.read_bytes() == PAYLOAD


def test_cached_file_that_fails_verification_is_downloaded_again(server, tmp_path):
    server.files["/data.bin"] = PAYLOAD
    (tmp_path / "data.bin").write_bytes(b"stale")
    path = download(server.url("/data.bin"), tmp_path, Expected(sha256=sha256(PAYLOAD)))
    assert path.read_bytes() == PAYLOAD
    assert len(server.requests) == 1


def test_checksum_mismatch_leaves_no_file(server, tmp_path):
    server.files["/data.bin"] = PAYLOAD
    with pytest.raises(SourceError, match="checksum mismatch.*was removed") as err:
        download(server.url("/data.bin"), tmp_path, Expected(sha256="0" * 64))
    assert server.url("/data.bin") in str(err.value)
    assert list(tmp_path.iterdir()) == [tmp_path / "data.bin.lock"]


def test_size_announced_by_server_is_checked_before_downloading(server, tmp_path):
    server.files["/data.bin"] = PAYLOAD
    with pytest.raises(SourceError, match="serves 102,400 bytes but data.bin is 5 bytes"):
        download(server.url("/data.bin"), tmp_path, Expected(size=5))
    assert not (tmp_path / "data.bin").exists()
    assert not (tmp_path / "data.bin.part").exists()


def test_http_404_names_the_url(server, tmp_path):
    url = server.url("/missing.zip")
    with pytest.raises(SourceError, match="HTTP 404") as err:
        download(url, tmp_path, param="stanford40_images_url")
    assert url in str(err.value)
    assert "downloads.stanford40_images_url in runtime.yaml" in str(err.value)
    assert not (tmp_path / "missing.zip").exists()


@pytest.mark.parametrize("code", [301, 302])
def test_redirect_is_followed(server, tmp_path, code):
    server.files["/new/data.bin"] = PAYLOAD
    server.redirects["/old/data.bin"] = (code, server.url("/new/data.bin"))
    path = download(server.url("/old/data.bin"), tmp_path, Expected(sha256=sha256(PAYLOAD)))
    assert path.name == "data.bin"
    assert path.read_bytes() == PAYLOAD
    assert [r[0] for r in server.requests] == ["/old/data.bin", "/new/data.bin"]


def test_resume_goes_through_a_redirect(server, tmp_path):
    server.files["/new/data.bin"] = PAYLOAD
    server.redirects["/old/data.bin"] = (301, server.url("/new/data.bin"))
    server.cuts["/new/data.bin"] = 1
    path = download(server.url("/old/data.bin"), tmp_path, Expected(sha256=sha256(PAYLOAD)))
    assert path.read_bytes() == PAYLOAD
    assert [r[0] for r in server.requests] == ["/old/data.bin", "/new/data.bin"] * 2
    assert server.requests[-1][1]["Range"] == f"bytes={len(PAYLOAD) // 2}-"


def test_unreachable_host_says_what_to_do(tmp_path):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/hmdb51_org.rar"
    with pytest.raises(SourceError) as err:
        download(url, tmp_path / "cache", param="hmdb51_videos_url")
    message = str(err.value)
    assert message.startswith(f"cannot reach 127.0.0.1:{port}")
    assert f"download {url} on a machine with internet" in message
    assert f"place it at {tmp_path / 'cache' / 'hmdb51_org.rar'}" in message
    assert "point downloads.hmdb51_videos_url at a local copy" in message


def test_local_path_and_file_url_are_used_in_place(tmp_path):
    local = tmp_path / "copy" / "data.bin"
    local.parent.mkdir()
    local.write_bytes(PAYLOAD)
    good = Expected(size=len(PAYLOAD), sha256=sha256(PAYLOAD))
    assert download(str(local), tmp_path / "cache", good) == local
    assert download(local.as_uri(), tmp_path / "cache", good) == local
    assert not (tmp_path / "cache").exists()  # nothing copied
    with pytest.raises(SourceError, match="checksum mismatch.*left as it is"):
        download(local.as_uri(), tmp_path / "cache", Expected(sha256="0" * 64))
    assert local.read_bytes() == PAYLOAD  # a user's copy is never deleted
    with pytest.raises(SourceError, match="no such file"):
        download(str(tmp_path / "nope.zip"), tmp_path / "cache")


def test_known_files_are_verified_by_name(tmp_path):
    assert sources.expected_for("http://mirror/x/hmdb51_org.rar").sha256.startswith("9e714a0d")
    assert sources.expected_for("/data/test_train_splits.rar").md5 == \
        "15e67781e70dcfbdce2d7dbb9b3344b5"
    fake = tmp_path / "Stanford40_JPEGImages.zip"
    fake.write_bytes(b"not the real zip")
    with pytest.raises(SourceError, match="size mismatch: expected 304,771,808 bytes"):
        download(str(fake), tmp_path / "cache", sources.expected_for(str(fake)))


# --------------------------------------------------------------------------- Stanford40

def test_fetch_stanford40_keeps_the_12_classes_and_the_lists(server, tmp_path, monkeypatch):
    images, splits = stanford40_archives()
    server.files["/Datasets/Stanford40_JPEGImages.zip"] = images
    server.files["/Datasets/Stanford40_ImageSplits.zip"] = splits
    monkeypatch.setattr(sources, "KNOWN_FILES", {
        "Stanford40_JPEGImages.zip": Expected(size=len(images), sha256=sha256(images)),
        "Stanford40_ImageSplits.zip": Expected()})
    downloads = download_params(tmp_path / "cache",
                                stanford40_images_url=server.url("/Datasets/Stanford40_JPEGImages.zip"),
                                stanford40_splits_url=server.url("/Datasets/Stanford40_ImageSplits.zip"))
    out = tmp_path / "stanford40"
    out.mkdir()
    fetch_stanford40(out, downloads)
    want = {f"JPEGImages/{c}_{i:03d}.jpg" for c in STANFORD40_CLASSES for i in (1, 2, 3)}
    assert tree(out) == want | {"ImageSplits/train.txt", "ImageSplits/test.txt"}
    with zipfile.ZipFile(io.BytesIO(splits)) as zf:  # the lists are copied as they are
        assert (out / "ImageSplits/train.txt").read_bytes() == zf.read("ImageSplits/train.txt")
        assert "brushing_teeth_001.jpg" in zf.read("ImageSplits/train.txt").decode()
    with zipfile.ZipFile(io.BytesIO(images)) as zf:
        assert (out / "JPEGImages/smoking_002.jpg").read_bytes() == \
            zf.read("JPEGImages/smoking_002.jpg")
    assert (tmp_path / "cache" / "Stanford40_JPEGImages.zip").is_file()


@pytest.fixture
def fake_known_files(monkeypatch):
    """KNOWN_FILES for the fake archives the local tests write (filled in by them)."""
    known: dict[str, Expected] = {}
    monkeypatch.setattr(sources, "KNOWN_FILES", known)
    return known


def _local_copy(tmp_path: Path, known: dict[str, Expected], name: str, data: bytes) -> Path:
    """A local copy under its official name, whose size is what KNOWN_FILES expects of it. It is a new
    archive of that name: the cache (tmp_path/cache) forgets any copy it trusted on first use."""
    (tmp_path / "in").mkdir(exist_ok=True)
    (tmp_path / "in" / name).write_bytes(data)
    known[name] = Expected(size=len(data))
    sources.record_of(tmp_path / "cache", name).unlink(missing_ok=True)
    return tmp_path / "in" / name


def _stanford40_local(tmp_path: Path, known: dict[str, Expected], images: bytes,
                      splits: bytes) -> tuple[DownloadParams, Path]:
    out = tmp_path / "stanford40"
    out.mkdir(exist_ok=True)
    downloads = download_params(
        tmp_path / "cache",
        stanford40_images_url=str(_local_copy(tmp_path, known, "Stanford40_JPEGImages.zip", images)),
        stanford40_splits_url=_local_copy(tmp_path, known, "Stanford40_ImageSplits.zip", splits).as_uri())
    return downloads, out


def test_truncated_stanford40_zip_is_a_clear_error(tmp_path, fake_known_files):
    images, splits = stanford40_archives()
    downloads, out = _stanford40_local(tmp_path, fake_known_files, images[: len(images) // 2], splits)
    with pytest.raises(SourceError, match=r"Stanford40_JPEGImages\.zip is corrupt or truncated") as err:
        fetch_stanford40(out, downloads)
    assert "run again" in str(err.value)
    assert list(out.iterdir()) == []  # nothing that could pass for a result


def test_stanford40_member_with_bad_crc_is_a_clear_error(tmp_path, fake_known_files):
    images, splits = stanford40_archives()
    with zipfile.ZipFile(io.BytesIO(images)) as zf:
        info = zf.getinfo("JPEGImages/jumping_002.jpg")
    data = bytearray(images)  # flip a byte inside that member's compressed data
    name_len, extra_len = struct.unpack_from("<HH", data, info.header_offset + 26)
    data[info.header_offset + 30 + name_len + extra_len + 2] ^= 0xFF
    downloads, out = _stanford40_local(tmp_path, fake_known_files, bytes(data), splits)
    with pytest.raises(SourceError, match=r"Stanford40_JPEGImages\.zip is corrupt or truncated"):
        fetch_stanford40(out, downloads)
    assert list(out.iterdir()) == []


def test_stanford40_missing_class_or_list_is_a_clear_error(tmp_path, fake_known_files):
    images, splits = stanford40_archives(classes=STANFORD40_CLASSES[:-1])
    downloads, out = _stanford40_local(tmp_path, fake_known_files, images, splits)
    with pytest.raises(SourceError, match="no images of waving_hands"):
        fetch_stanford40(out, downloads)
    assert list(out.iterdir()) == []
    downloads, _ = _stanford40_local(tmp_path, fake_known_files, *stanford40_archives()[::-1])  # swapped archives
    with pytest.raises(SourceError, match="has no ImageSplits/train.txt"):
        fetch_stanford40(out, downloads)


def test_archive_names_and_layout_agree():
    assert set(ARCHIVES) == {f.name for f in dataclasses.fields(DownloadParams)} - {"cache_dir"}
    assert set(ARCHIVES.values()) == set(sources.KNOWN_FILES)
    assert not hasattr(sources, "HMDB51_SPLITS_DIR")  # one home: layout.HMDB51_LISTS
    assert layout.HMDB51_LISTS == "testTrainMulti_7030_splits"


def test_committed_runtime_urls_end_in_the_official_names():
    downloads = load_runtime("runtime.yaml").downloads
    for field, name in ARCHIVES.items():
        assert sources.file_name(getattr(downloads, field)) == name, field


@pytest.mark.parametrize("field, url", [
    ("stanford40_images_url", "https://mirror.example/Stanford40_images.zip"),
    ("stanford40_splits_url", "https://mirror.example/Stanford40_JPEGImages.zip"),  # the other archive's name
    ("hmdb51_videos_url", "/data/hmdb51.rar"),
    ("hmdb51_splits_url", "file:///data/test_train_splits.rar.part"),
])
def test_url_not_ending_in_the_official_name_is_refused(server, tmp_path, fake_known_files, field, url):
    """A renamed copy would be cached and verified as the wrong file: refused, nothing downloaded."""
    first = "stanford40_images_url" if field.startswith("stanford40") else "hmdb51_videos_url"
    # the other archive of the dataset: a good local copy (a splits URL is checked after it)
    local = _local_copy(tmp_path, fake_known_files, ARCHIVES[first], b"x")
    downloads = download_params(tmp_path / "cache", **{first: str(local), field: url})
    out = tmp_path / "out"
    out.mkdir()
    fetch = fetch_stanford40 if field.startswith("stanford40") else fetch_hmdb51
    with pytest.raises(SourceError) as err:
        fetch(out, downloads)
    assert str(err.value).startswith(f"runtime.yaml: downloads.{field}: {url!r} must end in the official "
                                     f"file name {ARCHIVES[field]}")
    assert server.requests == [] and list(out.iterdir()) == []
    assert not (tmp_path / "cache").exists()


def test_output_dir_must_be_empty(tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "old.txt").write_text("x")
    with pytest.raises(SourceError, match="must be empty"):
        fetch_stanford40(tmp_path / "out", download_params(tmp_path / "cache"))


# --------------------------------------------------------------------------- HMDB51

def _hmdb51_expected_tree() -> set[str]:
    videos = {f"{c}/{c}_clip_{i}.avi" for c in HMDB51_CLASSES for i in range(3)}
    lists = {f"testTrainMulti_7030_splits/{c}_test_split{k}.txt"
             for c in HMDB51_CLASSES for k in (1, 2, 3)}
    return videos | lists


def test_fetch_hmdb51_extracts_nested_stored_rars(server, tmp_path, monkeypatch):
    videos, splits = hmdb51_archives()
    base = "/wp-content/uploads/2013/10"
    server.files[f"{base}/hmdb51_org.rar"] = videos
    server.files[f"{base}/test_train_splits.rar"] = splits
    monkeypatch.setattr(sources, "KNOWN_FILES", {
        "hmdb51_org.rar": Expected(sha256=sha256(videos)),
        "test_train_splits.rar": Expected(md5=hashlib.md5(splits).hexdigest())})
    downloads = download_params(tmp_path / "cache",
                                hmdb51_videos_url=server.url(f"{base}/hmdb51_org.rar"),
                                hmdb51_splits_url=server.url(f"{base}/test_train_splits.rar"))
    out = tmp_path / "hmdb51"
    out.mkdir()
    fetch_hmdb51(out, downloads)
    assert tree(out) == _hmdb51_expected_tree()
    assert (out / "clap" / "clap_clip_1.avi").read_bytes() == video_bytes("clap", 1)
    assert (out / "testTrainMulti_7030_splits/run_test_split2.txt").read_text() == \
        "run_clip_0.avi 2 \nrun_clip_1.avi 0 \nrun_clip_2.avi 1 \n"
    assert not any(p.name.startswith(".") for p in out.iterdir())  # scratch removed


def _hmdb51_local(tmp_path: Path, known: dict[str, Expected], videos: bytes,
                  splits: bytes) -> tuple[DownloadParams, Path]:
    out = tmp_path / "hmdb51"
    out.mkdir(exist_ok=True)
    downloads = download_params(
        tmp_path / "cache",
        hmdb51_videos_url=str(_local_copy(tmp_path, known, "hmdb51_org.rar", videos)),
        hmdb51_splits_url=str(_local_copy(tmp_path, known, "test_train_splits.rar", splits)))
    return downloads, out


@pytest.fixture
def no_rar_tool(monkeypatch):
    """As if neither unrar nor unar (nor any other tool) were installed."""
    for name in ("UNRAR_TOOL", "UNAR_TOOL", "BSDTAR_TOOL", "SEVENZIP_TOOL", "SEVENZIP2_TOOL"):
        monkeypatch.setattr(rarfile, name, "/nonexistent/" + name.lower())
    monkeypatch.setattr(rarfile, "CURRENT_SETUP", None)


def test_stored_hmdb51_needs_no_tool(tmp_path, no_rar_tool, fake_known_files):
    downloads, out = _hmdb51_local(tmp_path, fake_known_files, *hmdb51_archives())
    fetch_hmdb51(out, downloads)
    assert tree(out) == _hmdb51_expected_tree()


def test_compressed_rar_without_a_tool_fails_before_extracting(tmp_path, no_rar_tool, fake_known_files):
    downloads, out = _hmdb51_local(tmp_path, fake_known_files, *hmdb51_archives(method=0x33))
    with pytest.raises(SourceError) as err:
        fetch_hmdb51(out, downloads)
    assert str(err.value) == (
        "extracting test_train_splits.rar needs unar or unrar: on Debian/Ubuntu "
        "`sudo apt-get install unar`, on macOS `brew install unar`")
    assert list(out.iterdir()) == []


def test_compressed_inner_rar_without_a_tool_is_the_same_clear_error(tmp_path, no_rar_tool, fake_known_files):
    videos, _ = hmdb51_archives(method=0x33)  # inner RARs compressed, outer stored
    _, splits = hmdb51_archives()
    downloads, out = _hmdb51_local(tmp_path, fake_known_files, videos, splits)
    with pytest.raises(SourceError, match="extracting hmdb51_org.rar needs unar or unrar"):
        fetch_hmdb51(out, downloads)
    assert list(out.iterdir()) == []


def test_truncated_hmdb51_rar_is_a_clear_error(tmp_path, fake_known_files):
    videos, splits = hmdb51_archives()
    downloads, out = _hmdb51_local(tmp_path, fake_known_files, videos[: len(videos) * 2 // 3], splits)
    with pytest.raises(SourceError, match=r"hmdb51_org\.rar is corrupt or truncated") as err:
        fetch_hmdb51(out, downloads)
    assert "members need" in str(err.value)
    assert list(out.iterdir()) == []


def test_hmdb51_corrupt_video_is_a_clear_error(tmp_path, fake_known_files):
    videos, splits = hmdb51_archives()
    marker = video_bytes("jump", 1)
    at = videos.index(marker)  # inside jump.rar, inside the outer RAR (both stored)
    bad = videos[:at] + b"X" + videos[at + 1:]
    downloads, out = _hmdb51_local(tmp_path, fake_known_files, bad, splits)
    with pytest.raises(SourceError, match=r"hmdb51_org\.rar \(member jump\.rar\).*corrupt") as err:
        fetch_hmdb51(out, downloads)
    assert "CRC" in str(err.value)
    assert list(out.iterdir()) == []


def test_hmdb51_missing_class_is_a_clear_error(tmp_path, fake_known_files):
    videos, _ = hmdb51_archives(classes=HMDB51_CLASSES[1:])
    _, splits = hmdb51_archives()
    downloads, out = _hmdb51_local(tmp_path, fake_known_files, videos, splits)
    with pytest.raises(SourceError, match=r"hmdb51_org\.rar lacks clap\.rar"):
        fetch_hmdb51(out, downloads)
    _, splits = hmdb51_archives(classes=HMDB51_CLASSES[:-1])
    videos, _ = hmdb51_archives()
    downloads, out = _hmdb51_local(tmp_path, fake_known_files, videos, splits)
    with pytest.raises(SourceError, match=r"test_train_splits\.rar lacks wave_test_split1\.txt"):
        fetch_hmdb51(out, downloads)


def require_unar() -> str:
    """unar's path; without it skip the test, or fail it where TWOSTREAM_REQUIRE_RAR_TOOL=1."""
    path = shutil.which("unar")
    if path is None:
        why = ("unar is not on the PATH, and this test of the real RAR reader needs it: install "
               "it (Debian/Ubuntu: sudo apt-get install unar; macOS: brew install unar)")
        if os.environ.get(REQUIRE_RAR_TOOL, "") not in ("", "0"):
            pytest.fail(f"{why}. {REQUIRE_RAR_TOOL} is set (as in CI), so this is a failure, "
                        f"not a skip", pytrace=False)
        pytest.skip(why)
    return path


@pytest.fixture
def unar(monkeypatch) -> str:
    """rarfile set up to send compressed entries through unar (unrar hidden from it)."""
    path = require_unar()
    monkeypatch.setattr(rarfile, "UNRAR_TOOL", "/nonexistent/unrar")
    monkeypatch.setattr(rarfile, "CURRENT_SETUP", None)
    return path


def test_missing_unar_skips_on_a_dev_machine_and_fails_in_ci(monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda *args, **kwargs: None)
    monkeypatch.delenv(REQUIRE_RAR_TOOL, raising=False)
    with pytest.raises(pytest.skip.Exception, match="sudo apt-get install unar"):
        require_unar()
    monkeypatch.setenv(REQUIRE_RAR_TOOL, "0")
    with pytest.raises(pytest.skip.Exception):
        require_unar()
    monkeypatch.setenv(REQUIRE_RAR_TOOL, "1")
    with pytest.raises(pytest.fail.Exception,
                       match=r"needs it: install.*apt-get install unar.*a failure, not a skip"):
        require_unar()


def test_unar_backend_extracts_the_stored_fixture(tmp_path, monkeypatch, unar, fake_known_files):
    """With FORCE_TOOL rarfile sends even stored entries through the tool: unar works."""
    monkeypatch.setattr(rarfile, "FORCE_TOOL", True)
    downloads, out = _hmdb51_local(tmp_path, fake_known_files, *hmdb51_archives(classes=HMDB51_CLASSES))
    sources.require_rar_tool("x.rar", [type("Info", (), {"compress_type": 0x33})()])
    assert rarfile.CURRENT_SETUP.setup is rarfile.UNAR_CONFIG
    fetch_hmdb51(out, downloads)
    assert tree(out) == _hmdb51_expected_tree()
    assert (out / "wave" / "wave_clip_2.avi").read_bytes() == video_bytes("wave", 2)


# --------------------------------------------------------------------------- compressed RAR

def test_compressed_fixture_is_what_its_readme_says():
    data = SOLID_RAR.read_bytes()
    assert len(data) == 221
    assert sha256(data) == SOLID_RAR_SHA256
    assert SOLID_RAR_SHA256 in (FIXTURES / "README.md").read_text()
    assert sha256(SOLID_RAR_TEXT) == SOLID_RAR_TEXT_SHA256
    with rarfile.RarFile(SOLID_RAR, errors="strict") as rf:
        infos = rf.infolist()
        assert rf.is_solid()
        assert [i.filename for i in infos] == list(SOLID_RAR_MEMBERS)
        for info in infos:
            assert info.compress_type == rarfile.RAR_M3  # compressed: rarfile alone cannot read it
            assert info.compress_size < info.file_size == len(SOLID_RAR_TEXT)
            assert info.CRC == zlib.crc32(SOLID_RAR_TEXT)
        assert all(sources._needs_tool(i) for i in infos)


def _outer_with_fixture(tmp_path: Path) -> Path:
    """A stored outer RAR, like hmdb51_org.rar, with the fixture as its member clap.rar."""
    path = tmp_path / "hmdb51_org.rar"
    path.write_bytes(rar4([("brush_hair.rar", b"not read"), ("clap.rar", SOLID_RAR.read_bytes())]))
    return path


def test_compressed_inner_rar_is_extracted_through_unar(tmp_path, unar):
    """extract_hmdb51's per-class step, on a real compressed (and solid) RAR inside a RAR."""
    outer_path = _outer_with_fixture(tmp_path)
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    dest = tmp_path / "out" / "clap"
    with sources._open_rar(outer_path) as outer:
        info = outer.getinfo("clap.rar")
        assert info.compress_type == rarfile.RAR_M0  # the outer one is stored, as in HMDB51
        paths = sources.extract_inner_rar(outer, outer_path, info, dest, scratch, suffix=".txt")
    assert paths == [dest / name for name in SOLID_RAR_MEMBERS]
    assert sorted(p.name for p in dest.iterdir()) == list(SOLID_RAR_MEMBERS)
    for path in paths:
        data = path.read_bytes()
        assert data == SOLID_RAR_TEXT
        assert sha256(data) == SOLID_RAR_TEXT_SHA256
    assert list(scratch.iterdir()) == []  # the copy of the inner RAR is removed
    assert rarfile.CURRENT_SETUP.setup is rarfile.UNAR_CONFIG  # decoded by unar


def test_compressed_inner_rar_without_a_tool_fails_with_the_clear_message(tmp_path, no_rar_tool):
    message = ("extracting hmdb51_org.rar needs unar or unrar: on Debian/Ubuntu "
               "`sudo apt-get install unar`, on macOS `brew install unar`")
    outer_path = _outer_with_fixture(tmp_path)
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    dest = tmp_path / "out" / "clap"
    with sources._open_rar(outer_path) as outer:
        with pytest.raises(SourceError) as err:
            sources.extract_inner_rar(outer, outer_path, outer.getinfo("clap.rar"), dest,
                                      scratch, suffix=".txt")
    assert str(err.value) == message
    assert not dest.exists()
    assert list(scratch.iterdir()) == []


# --------------------------------------------------------------------------- verified by content

def small_zip(text: str = "applauding_001.jpg\n") -> bytes:
    """A zip of two lists, stored: texts of one length give zips of one size."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr("ImageSplits/train.txt", text * 200)
        zf.writestr("ImageSplits/test.txt", text)
    return buf.getvalue()


def recorded(cache: Path, name: str) -> dict:
    import json

    return json.loads(sources.record_of(cache, name).read_text())


def test_an_archive_without_a_published_hash_is_trusted_on_first_use_then_verified(server, tmp_path):
    name, first, other = "Stanford40_ImageSplits.zip", small_zip(), small_zip("smoking_000001.jpg\n")
    server.files[f"/Datasets/{name}"] = first
    url, cache = server.url(f"/Datasets/{name}"), tmp_path / "cache"
    path = download(url, cache, Expected())
    record = sources.record_of(cache, name)
    assert record == cache / f"{name}.sha256.json"
    assert recorded(cache, name) == {"file": name, "size": len(first), "sha256": sha256(first), "first_source": url}
    assert download(url, cache, Expected()) == path and len(server.requests) == 1  # verified, no request
    # the cached copy changes, and so does what the server serves: both hashes named, nothing kept
    path.write_bytes(other)
    server.files[f"/Datasets/{name}"] = other
    with pytest.raises(SourceError) as err:
        download(url, cache, Expected(), param="stanford40_splits_url")
    assert str(err.value) == (
        f"{url}: checksum mismatch: expected sha256 {sha256(first)} (recorded at its first use in {record}), got "
        f"{sha256(other)}. The bad file {cache / (name + '.part')} was removed: run again to download it afresh; if "
        f"this repeats, the server (or a proxy) serves a different file: get {name} elsewhere and point "
        f"downloads.stanford40_splits_url at the local copy (if the publisher really replaced {name}, delete "
        f"{record} to trust it)")
    assert sorted(p.name for p in cache.iterdir()) == [f"{name}.lock", record.name]
    assert recorded(cache, name)["sha256"] == sha256(first)
    server.files[f"/Datasets/{name}"] = first  # the right file again: accepted
    assert download(url, cache, Expected()).read_bytes() == first


def test_a_local_file_mirror_is_trusted_on_first_use_then_verified(tmp_path):
    name, first, other = "Stanford40_ImageSplits.zip", small_zip(), small_zip("smoking_000001.jpg\n")
    mirror, cache = tmp_path / "mirror" / name, tmp_path / "cache"
    mirror.parent.mkdir()
    mirror.write_bytes(first[: len(first) - 30])  # cut short: the zip's central directory is incomplete
    with pytest.raises(SourceError, match=rf"^{mirror} is corrupt or truncated \(.*\): replace it"):
        download(mirror.as_uri(), cache)
    assert not sources.record_of(cache, name).exists()  # nothing trusted
    mirror.write_bytes(first)
    assert download(mirror.as_uri(), cache) == mirror
    assert recorded(cache, name)["sha256"] == sha256(first)
    assert sorted(p.name for p in cache.iterdir()) == [f"{name}.sha256.json"]  # nothing copied
    mirror.write_bytes(other)  # the mirror's copy is swapped
    with pytest.raises(SourceError) as err:
        download(mirror.as_uri(), cache, param="stanford40_splits_url")
    record = sources.record_of(cache, name)
    assert str(err.value) == (
        f"{mirror}: checksum mismatch: expected sha256 {sha256(first)} (recorded at its first use in {record}), got "
        f"{sha256(other)} for {name}; this local copy was left as it is: replace it with a good copy or point "
        f"downloads.stanford40_splits_url elsewhere (if the publisher really replaced {name}, delete {record} to "
        f"trust it)")
    assert mirror.read_bytes() == other


def test_a_published_hash_is_never_replaced_by_a_record(tmp_path):
    data = small_zip()
    mirror = tmp_path / "Stanford40_ImageSplits.zip"
    mirror.write_bytes(data)
    assert download(str(mirror), tmp_path / "cache", Expected(sha256=sha256(data))) == mirror
    assert not (tmp_path / "cache").exists()  # a published hash needs no record


def test_a_body_cut_short_without_content_length_is_resumed_when_the_size_is_known(server, tmp_path):
    name, data = "Stanford40_ImageSplits.zip", small_zip()
    server.files[f"/{name}"] = data
    server.no_length.add(f"/{name}")
    cache = tmp_path / "cache"
    download(server.url(f"/{name}"), cache).unlink()  # the first use records the size and hash
    server.cuts[f"/{name}"] = 1  # no Content-Length: only the recorded size shows the body is short
    path = download(server.url(f"/{name}"), cache)
    assert path.read_bytes() == data
    assert [r[1].get("Range") for r in server.requests[1:]] == [None, f"bytes={len(data) // 2}-"]


def test_a_first_download_cut_short_without_content_length_is_caught_by_the_zip(server, tmp_path):
    """Nothing to compare with: only the zip's own structure (central directory at its end) shows it."""
    name = "Stanford40_ImageSplits.zip"
    server.files[f"/{name}"] = small_zip()
    server.no_length.add(f"/{name}")
    server.cuts[f"/{name}"] = 1
    cache = tmp_path / "cache"
    url = server.url(f"/{name}")
    with pytest.raises(SourceError) as err:
        download(url, cache)
    assert str(err.value).startswith(f"{url}: the download is not a complete zip archive (")
    assert str(err.value).endswith(f"it was probably cut short (the server gave no length to check against). The "
                                   f"file {cache / (name + '.part')} was removed: run again to download it afresh")
    assert sorted(p.name for p in cache.iterdir()) == [f"{name}.lock"]  # no file, no record


@pytest.mark.parametrize("target", ["file:///etc/passwd", "ftp://127.0.0.1/data.bin"])
def test_a_redirect_out_of_http_is_refused(server, tmp_path, target):
    server.redirects["/data.bin"] = (302, target)
    url = server.url("/data.bin")
    with pytest.raises(SourceError) as err:
        download(url, tmp_path, param="stanford40_images_url")
    assert str(err.value) == (f"{url} redirects to {target}: refused (a download follows redirects only to http(s), "
                              f"never from https to plain http); download it yourself and point "
                              f"downloads.stanford40_images_url in runtime.yaml at the local copy")
    assert not (tmp_path / "data.bin").exists()


@pytest.mark.parametrize("old, new, allowed", [
    ("https://example.org/a.zip", "http://example.org/a.zip", False),
    ("https://example.org/a.zip", "https://mirror.example.org/a.zip", True),
    ("http://example.org/a.zip", "https://example.org/a.zip", True),
    ("http://example.org/a.zip", "http://mirror.example.org/a.zip", True),
])
def test_redirects_never_leave_https(old, new, allowed):
    import email.message
    import urllib.request

    handler = sources._Redirects("stanford40_images_url")
    request = urllib.request.Request(old)
    fp = io.BytesIO()
    if allowed:
        assert handler.redirect_request(request, fp, 302, "Found", email.message.Message(), new).full_url == new
    else:
        with pytest.raises(SourceError, match=rf"^{re.escape(old)} redirects to {re.escape(new)}: refused"):
            handler.redirect_request(request, fp, 302, "Found", email.message.Message(), new)


def test_the_committed_downloads_use_https_where_the_server_offers_it():
    downloads = load_runtime("runtime.yaml").downloads
    assert downloads.hmdb51_videos_url.startswith("https://")
    assert downloads.hmdb51_splits_url.startswith("https://")


# --------------------------------------------------------------------------- extraction stays inside

def images_zip_with(*extra: tuple[str, bytes], link: str | None = None) -> bytes:
    """Stanford40_JPEGImages.zip (fake, valid) with `extra` members appended, and a symbolic link named `link`."""
    import warnings

    buf = io.BytesIO(stanford40_archives()[0])
    with warnings.catch_warnings(), zipfile.ZipFile(buf, "a", zipfile.ZIP_DEFLATED) as zf:
        warnings.simplefilter("ignore")  # zipfile warns of a duplicate name, and writes it
        for name, data in extra:
            zf.writestr(name, data)
        if link:
            info = zipfile.ZipInfo(link)
            info.create_system = 3
            info.external_attr = (0o120777 << 16)
            zf.writestr(info, "../../outside.jpg")
    return buf.getvalue()


FIX = "a damaged or tampered archive: delete it (a download) or replace it (a local copy) and run again"


@pytest.mark.parametrize("extra, link, problem", [
    ([("JPEGImages/smoking_002.jpg", b"other")], None,
     "member 'JPEGImages/smoking_002.jpg' occurs twice (the last copy would silently win)"),
    ([("../../evil/applauding_009.jpg", b"x")], None,
     "member '../../evil/applauding_009.jpg' would land outside the target directory (a '..' component)"),
    ([("/tmp/evil/applauding_009.jpg", b"x")], None,
     "member '/tmp/evil/applauding_009.jpg' would land outside the target directory (an absolute path)"),
    ([], "JPEGImages/applauding_009.jpg",
     "member 'JPEGImages/applauding_009.jpg' is a symbolic link, which could point outside the target directory"),
])
def test_an_unsafe_zip_is_refused_before_anything_is_written(tmp_path, fake_known_files, extra, link, problem):
    images = images_zip_with(*extra, link=link)
    downloads, out = _stanford40_local(tmp_path, fake_known_files, images, stanford40_archives()[1])
    with pytest.raises(SourceError) as err:
        fetch_stanford40(out, downloads)
    assert str(err.value) == f"{tmp_path / 'in' / 'Stanford40_JPEGImages.zip'}: {problem}; {FIX}"
    assert list(out.iterdir()) == [] and not (tmp_path / "evil").exists()


def test_two_members_landing_on_one_file_are_refused(tmp_path, fake_known_files):
    images = images_zip_with(("copy/JPEGImages/smoking_002.jpg", b"other"))
    downloads, out = _stanford40_local(tmp_path, fake_known_files, images, stanford40_archives()[1])
    with pytest.raises(SourceError, match=r"members 'JPEGImages/smoking_002.jpg' and 'copy/JPEGImages/smoking_002"
                                          r".jpg' would both be JPEGImages/smoking_002.jpg"):
        fetch_stanford40(out, downloads)
    assert list(out.iterdir()) == []


def test_a_zip_bomb_is_refused_by_its_declared_size(tmp_path, fake_known_files, monkeypatch):
    monkeypatch.setattr(sources, "MAX_UNPACKED_BYTES", 1 << 20)
    images = images_zip_with(("JPEGImages/zeros.bin", bytes(2 << 20)))  # 2 MiB of zeros: a few KB deflated
    assert len(images) < 50_000
    downloads, out = _stanford40_local(tmp_path, fake_known_files, images, stanford40_archives()[1])
    with pytest.raises(SourceError) as err:
        fetch_stanford40(out, downloads)
    assert re.fullmatch(rf"{re.escape(str(tmp_path / 'in' / 'Stanford40_JPEGImages.zip'))}: its members unpack to "
                        r"2,\d{3},\d{3} bytes, more than the bound of 1,048,576 \(twostream\.data\.sources\."
                        r"MAX_UNPACKED_BYTES\): not the expected archive \(a zip bomb\?\); delete it \(a download\) "
                        r"or replace it \(a local copy\)", str(err.value))
    assert list(out.iterdir()) == []


def test_the_real_bound_allows_the_real_archives():
    assert sources.MAX_UNPACKED_BYTES >= 4 * 2_100_000_000  # hmdb51_org.rar, the largest, is 2.1 GB


def hmdb51_with_inner(clap_members: list[tuple[str, bytes | None]], links: frozenset[str] = frozenset()) -> bytes:
    """hmdb51_org.rar (fake, stored) whose clap.rar holds `clap_members` (`links`: those that are symbolic links)."""
    inner = []
    for cls in HMDB51_CLASSES:
        members = clap_members if cls == "clap" else [(f"{cls}/{cls}_clip_0.avi", video_bytes(cls, 0))]
        inner.append((f"{cls}.rar", rar4(members, links=links if cls == "clap" else frozenset())))
    return rar4(inner)


@pytest.mark.parametrize("members, problem", [
    ([("clap/a.avi", b"RIFF1"), ("clap/a.avi", b"RIFF2")],
     "member 'clap/a.avi' occurs twice (the last copy would silently win); " + FIX),
    ([("clap/a.avi", b"RIFF1"), ("other/a.avi", b"RIFF2")],
     "two members named a.avi (the last would silently win): a damaged or tampered archive; delete it "
     "(a download) or replace it and run again"),
    ([("../../../evil.avi", b"RIFF")],
     "member '../../../evil.avi' would land outside the target directory (a '..' component); " + FIX),
])
def test_an_unsafe_inner_rar_is_refused_before_its_videos_are_written(tmp_path, fake_known_files, members, problem):
    _, splits = hmdb51_archives()
    downloads, out = _hmdb51_local(tmp_path, fake_known_files, hmdb51_with_inner(members), splits)
    with pytest.raises(SourceError) as err:
        fetch_hmdb51(out, downloads)
    assert str(err.value) == f"{tmp_path / 'in' / 'hmdb51_org.rar'} (member clap.rar): {problem}"
    assert list(out.iterdir()) == [] and not (tmp_path / "evil.avi").exists()


def test_a_link_in_an_inner_rar_is_refused(tmp_path, fake_known_files):
    _, splits = hmdb51_archives()
    videos = hmdb51_with_inner([("clap/a.avi", b"../../../../etc/passwd")], links=frozenset({"clap/a.avi"}))
    downloads, out = _hmdb51_local(tmp_path, fake_known_files, videos, splits)
    with pytest.raises(SourceError) as err:
        fetch_hmdb51(out, downloads)
    assert str(err.value) == (f"{tmp_path / 'in' / 'hmdb51_org.rar'} (member clap.rar): member 'clap/a.avi' is a "
                              f"symbolic link, which could point outside the target directory; {FIX}")
    assert list(out.iterdir()) == []


def test_an_outer_rar_with_a_duplicate_class_is_refused(tmp_path, fake_known_files):
    videos, splits = hmdb51_archives()
    doubled = rar4([("clap.rar", rar4([("clap/x.avi", b"RIFF")])), ("clap.rar", rar4([("clap/y.avi", b"RIFF")]))])
    downloads, out = _hmdb51_local(tmp_path, fake_known_files, doubled, splits)
    with pytest.raises(SourceError, match=r"hmdb51_org\.rar: member 'clap\.rar' occurs twice"):
        fetch_hmdb51(out, downloads)


def test_inner_rars_share_one_bound(tmp_path, fake_known_files, monkeypatch):
    """A compressed inner RAR can unpack to more than it occupies in the outer one: the bound is shared by all
    of them, each one checked against what is left before any of its videos is written."""
    outer_path = tmp_path / "hmdb51_org.rar"
    outer_path.write_bytes(hmdb51_with_inner([("clap/a.avi", b"RIFF" * 100), ("clap/b.avi", b"RIFF" * 100)]))
    scratch, dest = tmp_path / "scratch", tmp_path / "out" / "clap"
    scratch.mkdir()
    with sources._open_rar(outer_path) as outer:
        with pytest.raises(SourceError) as err:
            sources.extract_inner_rar(outer, outer_path, outer.getinfo("clap.rar"), dest, scratch, room=799)
    assert str(err.value) == (f"{outer_path} (member clap.rar): its videos unpack to 800 bytes, more than the 799 "
                              f"left of the bound of {sources.MAX_UNPACKED_BYTES:,} for hmdb51_org.rar "
                              f"(twostream.data.sources.MAX_UNPACKED_BYTES): a zip bomb?; delete it and run again")
    assert not dest.exists() and list(scratch.iterdir()) == []
    # fetch_hmdb51 passes what is left after each class
    rooms = []
    real = sources.extract_inner_rar

    def spy(*args, room, **kwargs):
        rooms.append(room)
        return real(*args, room=room, **kwargs)

    monkeypatch.setattr(sources, "extract_inner_rar", spy)
    videos, splits = hmdb51_archives(videos=2)
    downloads, out = _hmdb51_local(tmp_path, fake_known_files, videos, splits)
    fetch_hmdb51(out, downloads)
    sizes = [sum(p.stat().st_size for p in (out / c).iterdir()) for c in HMDB51_CLASSES]
    assert rooms == [sources.MAX_UNPACKED_BYTES - sum(sizes[:i]) for i in range(len(HMDB51_CLASSES))]
