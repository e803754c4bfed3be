"""`tinysense download` against a local HTTP server that answers like the GitHub releases API (release JSON and
assets): the firmware is verified by sha256 and cached, a corrupt asset is refused, a missing board is a clear error."""

from __future__ import annotations

import hashlib
import json
import os
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tinysense.cli import main


@dataclass
class FakeReleases:
    """Serves `<base>/latest`, `<base>/tags/<tag>` and the assets of each release; logs every request path."""

    base_path: str = "/repos/tinysense/tinysense/releases"
    releases: dict[str, dict[str, bytes]] = field(default_factory=dict)  # tag -> asset name -> bytes
    latest: str | None = None
    digests: dict[tuple[str, str], str] = field(default_factory=dict)  # GitHub's "digest" field, when set
    pages: dict[str, bytes] = field(default_factory=dict)  # any other path -> body
    requests: list[str] = field(default_factory=list)
    port: int = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}{self.base_path}"

    def add(self, tag: str, assets: dict[str, bytes], latest: bool = True) -> None:
        self.releases[tag] = assets
        if latest:
            self.latest = tag

    def release_json(self, tag: str) -> bytes:
        assets = []
        for name, data in self.releases[tag].items():
            asset = {"name": name, "size": len(data),
                     "browser_download_url": f"http://127.0.0.1:{self.port}/download/{tag}/{name}"}
            if (tag, name) in self.digests:
                asset["digest"] = self.digests[(tag, name)]
            assets.append(asset)
        return json.dumps({"tag_name": tag, "name": tag, "assets": assets}).encode()

    def answer(self, path: str) -> tuple[int, bytes]:
        self.requests.append(path)
        if path in self.pages:
            return 200, self.pages[path]
        if path == f"{self.base_path}/latest" and self.latest:
            return 200, self.release_json(self.latest)
        if path.startswith(f"{self.base_path}/tags/") and path.rsplit("/", 1)[1] in self.releases:
            return 200, self.release_json(path.rsplit("/", 1)[1])
        parts = path.split("/")
        if len(parts) == 4 and parts[1] == "download" and parts[3] in self.releases.get(parts[2], {}):
            return 200, self.releases[parts[2]][parts[3]]
        return 404, b'{"message": "Not Found"}'


@pytest.fixture
def server() -> Iterator[FakeReleases]:
    fake = FakeReleases()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            status, body = fake.answer(self.path)
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    fake.port = httpd.server_address[1]
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield fake
    httpd.shutdown()
    httpd.server_close()
    thread.join()


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "cache"
    monkeypatch.setenv("TINYSENSE_CACHE_DIR", str(path))
    monkeypatch.delenv("TINYSENSE_RELEASES_URL", raising=False)
    return path


def firmware_assets(board: str, data: bytes, sha_of: bytes | None = None) -> dict[str, bytes]:
    digest = hashlib.sha256(data if sha_of is None else sha_of).hexdigest()
    return {f"{board}-firmware.bin": data, f"{board}-firmware.bin.sha256": f"{digest}  {board}-firmware.bin\n".encode()}


def run_error(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    status = main(argv)
    err = capsys.readouterr().err.strip()
    assert status == 1
    assert len(err.splitlines()) == 1, err
    return err


def cache_files(cache: Path) -> list[Path]:
    return sorted(p for p in cache.rglob("*") if p.is_file()) if cache.exists() else []


def test_download_verifies_and_caches(server: FakeReleases, cache: Path, tmp_path: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    firmware = os.urandom(300_000)
    server.add("v0.3.0", {**firmware_assets("atoms3", firmware), **firmware_assets("generic-s3", b"other")})
    assert main(["download", "--board", "atoms3", "--base-url", server.base_url,
                 "-o", str(tmp_path / "fw.bin")]) == 0
    cached = cache / "firmware" / "v0.3.0" / "atoms3-firmware.bin"
    assert cached.read_bytes() == firmware
    assert (tmp_path / "fw.bin").read_bytes() == firmware
    assert cache_files(cache) == [cached]
    assert "/download/v0.3.0/atoms3-firmware.bin" in server.requests
    assert str(cached) in capsys.readouterr().out

    # Second time: served from the cache (only the release JSON and the checksum are fetched).
    server.requests.clear()
    assert main(["download", "--board", "atoms3", "--base-url", server.base_url]) == 0
    assert "/download/v0.3.0/atoms3-firmware.bin" not in server.requests
    assert "already cached" in capsys.readouterr().out


def test_tag_and_env_base_url(server: FakeReleases, cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    server.add("v0.1.0", firmware_assets("s3-eye", b"old firmware"), latest=False)
    server.add("v0.2.0", firmware_assets("s3-eye", b"new firmware"))
    monkeypatch.setenv("TINYSENSE_RELEASES_URL", server.base_url)
    assert main(["download", "--board", "s3-eye", "--tag", "v0.1.0"]) == 0
    assert main(["download", "--board", "s3-eye"]) == 0
    assert (cache / "firmware" / "v0.1.0" / "s3-eye-firmware.bin").read_bytes() == b"old firmware"
    assert (cache / "firmware" / "v0.2.0" / "s3-eye-firmware.bin").read_bytes() == b"new firmware"
    assert f"{server.base_path}/tags/v0.1.0" in server.requests


def test_corrupt_asset_is_refused(server: FakeReleases, cache: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = os.urandom(100_000)
    bad = bytearray(good)
    bad[5000] ^= 0x01
    server.add("v0.3.0", firmware_assets("atoms3", bytes(bad), sha_of=good))
    err = run_error(["download", "--board", "atoms3", "--base-url", server.base_url], capsys)
    assert "sha256" in err and "nothing was saved" in err
    assert cache_files(cache) == []  # no half-written or unverified file left behind


def test_corrupt_cache_is_replaced(server: FakeReleases, cache: Path) -> None:
    server.add("v0.3.0", firmware_assets("atoms3", b"good firmware"))
    cached = cache / "firmware" / "v0.3.0" / "atoms3-firmware.bin"
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"truncated")
    assert main(["download", "--board", "atoms3", "--base-url", server.base_url]) == 0
    assert cached.read_bytes() == b"good firmware"


def test_github_digest_must_agree(server: FakeReleases, cache: Path, capsys: pytest.CaptureFixture[str]) -> None:
    server.add("v0.3.0", firmware_assets("atoms3", b"firmware"))
    server.digests[("v0.3.0", "atoms3-firmware.bin")] = "sha256:" + hashlib.sha256(b"something else").hexdigest()
    assert "disagree" in run_error(["download", "--board", "atoms3", "--base-url", server.base_url], capsys)
    assert cache_files(cache) == []


def test_missing_board_in_release(server: FakeReleases, cache: Path, capsys: pytest.CaptureFixture[str]) -> None:
    server.add("v0.3.0", firmware_assets("atoms3", b"firmware"))
    err = run_error(["download", "--board", "s3-eye", "--base-url", server.base_url], capsys)
    assert "release v0.3.0 has no firmware for board s3-eye (it has: atoms3)" in err


def test_missing_checksum(server: FakeReleases, cache: Path, capsys: pytest.CaptureFixture[str]) -> None:
    server.add("v0.3.0", {"atoms3-firmware.bin": b"firmware"})
    assert "cannot be verified" in run_error(["download", "--board", "atoms3", "--base-url", server.base_url],
                                             capsys)
    assert cache_files(cache) == []


def test_unknown_board(server: FakeReleases, cache: Path, capsys: pytest.CaptureFixture[str]) -> None:
    err = run_error(["download", "--board", "esp8266", "--base-url", server.base_url], capsys)
    assert "unknown board 'esp8266'; use one of" in err and "atoms3" in err
    assert server.requests == []


def test_missing_tag_and_no_releases(server: FakeReleases, cache: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert "latest release not found" in run_error(["download", "--board", "atoms3", "--base-url", server.base_url],
                                                   capsys)
    server.add("v0.3.0", firmware_assets("atoms3", b"firmware"))
    err = run_error(["download", "--board", "atoms3", "--tag", "v9.9.9", "--base-url", server.base_url], capsys)
    assert "release v9.9.9 not found" in err and "--tag" in err


def test_not_a_release_api(server: FakeReleases, cache: Path, capsys: pytest.CaptureFixture[str]) -> None:
    server.pages["/some/website/latest"] = b"<html>hello</html>"
    wrong = f"http://127.0.0.1:{server.port}/some/website"
    assert "did not answer a GitHub release" in run_error(["download", "--board", "atoms3", "--base-url", wrong],
                                                          capsys)


def test_unreachable_server(cache: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    err = run_error(["download", "--board", "atoms3", "--base-url", f"http://127.0.0.1:{port}/releases"], capsys)
    assert "cannot reach" in err and "--base-url" in err
    assert "not http" in run_error(["download", "--board", "atoms3", "--base-url", "file:///etc"], capsys)
