"""Tests of the OpenFace model cache; downloads come from a local HTTP server, never the internet.

Most tests swap the manifest for three small generated files, so they need none of OpenFace's
files; the last ones check the real manifest against the read-only cache in ``/work/shared``.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import http.server
import os
import socket
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from mtcnn_lab.errors import LicenseNotAccepted, WeightsError
from mtcnn_lab.weights import models_cache as mc

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
SHARED_MODELS = SHARED / "OpenFaceModels"
FAKE_SIZES = {"pnet": 1000, "rnet": 5000, "onet": 70_000}  # onet spans two read chunks


class _Handler(http.server.SimpleHTTPRequestHandler):
    """Serves the files of one folder; ``server.faults`` injects one failure per request."""

    def do_GET(self) -> None:
        server = self.server
        server.requests.append(self.path)
        time.sleep(server.delay)
        fault = server.faults.pop(0) if server.faults else None
        if fault == "503":
            self.send_error(503, "try again later")
        elif fault == "short":  # announces the full length, sends half, closes the connection
            body = Path(self.directory, self.path.lstrip("/")).read_bytes()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body[: len(body) // 2])
        else:
            super().do_GET()

    def log_message(self, *args: object) -> None:
        """Keep the test output quiet."""


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    """No consent, no mirror, a throw-away default root, no backoff, an empty hash cache."""
    monkeypatch.delenv(mc.ENV_ACCEPT_LICENSE, raising=False)
    monkeypatch.delenv(mc.ENV_BASE_URL, raising=False)
    monkeypatch.setenv(mc.ENV_MODELS_DIR, str(tmp_path / "default-root"))
    monkeypatch.setattr(mc, "_BACKOFF_S", 0.0)
    monkeypatch.setattr(mc, "_DIGESTS", {})


@pytest.fixture
def server(tmp_path, monkeypatch):
    """A local server of three fake model files that replace the manifest's entries."""
    served = tmp_path / "served"
    rng = np.random.default_rng(0)
    manifest = {}
    for net, size in FAKE_SIZES.items():
        data = rng.integers(0, 256, size, dtype=np.uint8).tobytes()
        entry = mc.ModelFile(f"fake/model/{net.upper()}.dat", size, hashlib.sha256(data).hexdigest())
        path = served / entry.relpath
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        manifest[net] = entry
    monkeypatch.setattr(mc, "MANIFEST", manifest)
    handler = functools.partial(_Handler, directory=str(served))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    httpd.requests, httpd.faults, httpd.delay = [], [], 0.0
    httpd.served = served
    httpd.base_url = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()
    thread.join()


def _install(server, root: Path, **kwargs) -> dict[str, Path]:
    kwargs.setdefault("accept_license", True)
    return mc.install_openface_models(root=root, base_url=server.base_url, progress=False, **kwargs)


def _served_bytes(server, net: str) -> bytes:
    return (server.served / mc.MANIFEST[net].relpath).read_bytes()


def _leftovers(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.name.endswith(".part")]


# --------------------------------------------------------------------------------------------
# locations, manifest, consent


def test_manifest_lists_openface_220_files():
    assert {net: (e.name, e.size, e.sha256) for net, e in mc.MANIFEST.items()} == {
        "pnet": ("PNet.dat", 35088,
                 "22dfd0a96ec983e99b21c0e214d89d55ea9a471eedd53e5a48203f22bcb4c489"),
        "rnet": ("RNet.dat", 454912,
                 "95e9c4203ca0a08c84520fa5fd658834213ed2453a7359f4d9514a06762f91e9"),
        "onet": ("ONet.dat", 1729592,
                 "4c853ae5b461abe4d41f1cd77625895cd71452956c63c622fd75a3b820fb1d31"),
    }
    for entry in mc.MANIFEST.values():
        assert entry.relpath == f"lib/local/LandmarkDetector/model/mtcnn_detector/{entry.name}"


def test_dat_path_layout_is_case_insensitive(tmp_path):
    expected = (tmp_path / "2.2.0" / "originals" / "lib" / "local" / "LandmarkDetector" / "model"
                / "mtcnn_detector" / "PNet.dat")
    assert mc.dat_path("pnet", tmp_path) == expected
    assert mc.dat_path("PNet", tmp_path) == expected
    assert mc.dat_path("ONET", tmp_path).name == "ONet.dat"


def test_dat_path_rejects_unknown_net(tmp_path):
    with pytest.raises(WeightsError, match="unknown network 'qnet'"):
        mc.dat_path("qnet", tmp_path)


def test_openface_models_dir_is_respected(tmp_path, monkeypatch, server):
    monkeypatch.setenv(mc.ENV_MODELS_DIR, str(tmp_path / "from-env"))
    assert mc.models_root() == tmp_path / "from-env"
    assert mc.dat_path("rnet").is_relative_to(tmp_path / "from-env" / "2.2.0" / "originals")
    paths = mc.install_openface_models(accept_license=True, base_url=server.base_url,
                                       progress=False)
    assert paths == {net: mc.dat_path(net) for net in ("pnet", "rnet", "onet")}
    assert mc.installed_dat_paths() == paths

    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv(mc.ENV_MODELS_DIR, "~/models")
    assert mc.models_root() == tmp_path / "home" / "models"


@pytest.mark.parametrize(
    ("platform", "env", "expected"),
    [
        ("linux", {}, "home/.local/share/OpenFaceModels"),
        ("linux", {"XDG_DATA_HOME": "{tmp}/xdg"}, "xdg/OpenFaceModels"),
        ("linux", {"XDG_DATA_HOME": "relative/xdg"}, "home/.local/share/OpenFaceModels"),
        ("darwin", {}, "home/Library/Application Support/OpenFaceModels"),
        ("win32", {"LOCALAPPDATA": "{tmp}/appdata"}, "appdata/OpenFaceModels"),
    ],
)
def test_default_root_per_platform(tmp_path, monkeypatch, platform, env, expected):
    monkeypatch.delenv(mc.ENV_MODELS_DIR)
    monkeypatch.delenv("XDG_DATA_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    for key, value in env.items():
        monkeypatch.setenv(key, value.format(tmp=tmp_path))
    monkeypatch.setattr(sys, "platform", platform)
    assert mc.models_root() == tmp_path / expected


@pytest.mark.parametrize("value", ["1", "true", "TRUE", "yes", " Yes "])
def test_license_accepted_by_env(monkeypatch, value):
    monkeypatch.setenv(mc.ENV_ACCEPT_LICENSE, value)
    assert mc.license_accepted()


@pytest.mark.parametrize("value", ["", "0", "false", "no", "2", "y"])
def test_license_not_accepted_by_other_env_values(monkeypatch, value):
    monkeypatch.setenv(mc.ENV_ACCEPT_LICENSE, value)
    assert not mc.license_accepted()
    assert mc.license_accepted(accept_license=True)


# --------------------------------------------------------------------------------------------
# installing


def test_no_consent_raises_and_writes_nothing(tmp_path, server):
    root = tmp_path / "cache"
    with pytest.raises(LicenseNotAccepted) as info:
        _install(server, root, accept_license=False)
    message = str(info.value)
    assert "\n" not in message
    assert "non-commercial" in message and mc.LICENSE_URL in message
    assert "--accept-license" in message and f"{mc.ENV_ACCEPT_LICENSE}=1" in message
    assert not root.exists()
    assert server.requests == []


def test_consent_by_flag_downloads_and_verifies(tmp_path, server):
    root = tmp_path / "cache"
    paths = _install(server, root)
    assert set(paths) == {"pnet", "rnet", "onet"}
    for net, path in paths.items():
        assert path == mc.dat_path(net, root)
        assert path.read_bytes() == _served_bytes(server, net)
    assert mc.installed_dat_paths(root) == paths
    assert sorted(server.requests) == sorted(f"/{e.relpath}" for e in mc.MANIFEST.values())
    version_dir = root / "2.2.0"
    assert (version_dir / ".lock").exists()  # the lock file pymtcnn also uses
    assert mc.LICENSE_URL in (version_dir / mc.NOTICE_NAME).read_text(encoding="utf-8")
    assert _leftovers(root) == []


def test_consent_and_mirror_by_env(tmp_path, monkeypatch, server):
    monkeypatch.setenv(mc.ENV_ACCEPT_LICENSE, "yes")
    monkeypatch.setenv(mc.ENV_BASE_URL, server.base_url + "/")
    root = tmp_path / "cache"
    paths = mc.install_openface_models(root=root, progress=False)
    assert mc.installed_dat_paths(root) == paths
    assert len(server.requests) == 3


def test_progress_bar_goes_to_stderr(tmp_path, server, capsys):
    mc.install_openface_models(True, tmp_path / "cache", server.base_url, progress=True)
    assert "ONET.dat" in capsys.readouterr().err


def test_already_installed_makes_no_request(tmp_path, server):
    root = tmp_path / "cache"
    paths = _install(server, root)
    server.requests.clear()
    assert _install(server, root, accept_license=False) == paths
    assert server.requests == []


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_downloaded_files_follow_the_umask(tmp_path, server, umask):
    """A shared cache: what is downloaded gets the permissions of any file the user creates."""
    old = os.umask(umask)
    try:
        paths = _install(server, tmp_path / "cache")
        made = tmp_path / "made-by-open"
        made.write_bytes(b"")
    finally:
        os.umask(old)
    expected = stat.S_IMODE(made.stat().st_mode)  # what open() gives under this umask
    assert expected == 0o666 & ~umask
    assert {net: stat.S_IMODE(path.stat().st_mode) for net, path in paths.items()} == dict.fromkeys(paths, expected)


@pytest.mark.parametrize("damage", ["truncated", "corrupted"])
def test_bad_download_raises_and_leaves_no_file(tmp_path, server, damage):
    served = server.served / mc.MANIFEST["onet"].relpath
    data = bytearray(served.read_bytes())
    if damage == "truncated":
        del data[-100:]
    else:
        data[123] ^= 0xFF
    served.write_bytes(bytes(data))
    root = tmp_path / "cache"
    with pytest.raises(WeightsError) as info:
        _install(server, root, retries=2)
    message = str(info.value)
    assert "\n" not in message
    assert "after 3 attempt(s)" in message
    assert ("bytes, expected" if damage == "truncated" else "SHA-256") in message
    assert server.requests.count(f"/{mc.MANIFEST['onet'].relpath}") == 3
    assert not mc.dat_path("onet", root).exists()
    assert _leftovers(root) == []
    assert mc.installed_dat_paths(root) is None


@pytest.mark.parametrize("fault", ["503", "short"])
def test_transient_failure_is_retried(tmp_path, server, fault):
    server.faults.append(fault)
    root = tmp_path / "cache"
    paths = _install(server, root, retries=1)
    assert len(server.requests) == 4  # pnet twice, then rnet and onet
    assert paths["pnet"].read_bytes() == _served_bytes(server, "pnet")
    assert mc.installed_dat_paths(root) == paths
    assert _leftovers(root) == []


def test_failure_without_retries_left(tmp_path, server):
    server.faults.append("503")
    with pytest.raises(WeightsError, match="HTTP 503"):
        _install(server, tmp_path / "cache", retries=0)
    assert len(server.requests) == 1


def test_no_server_names_the_connection_error_after_every_attempt(tmp_path, server):
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()  # nothing listens there now: every attempt is refused
    with pytest.raises(WeightsError, match=r"after 2 attempt\(s\) \(.*[Cc]onnection refused\)") as raised:
        mc.install_openface_models(True, tmp_path / "cache", f"http://127.0.0.1:{port}", progress=False, retries=1)
    assert "\n" not in str(raised.value) and "nothing was saved" in str(raised.value)
    assert not (tmp_path / "cache").exists() or _leftovers(tmp_path / "cache") == []


def test_missing_on_server_is_not_retried(tmp_path, server):
    (server.served / mc.MANIFEST["rnet"].relpath).unlink()
    with pytest.raises(WeightsError, match="HTTP 404"):
        _install(server, tmp_path / "cache", retries=3)
    assert server.requests.count(f"/{mc.MANIFEST['rnet'].relpath}") == 1


def test_bad_base_url(tmp_path, server):
    with pytest.raises(WeightsError, match=mc.ENV_BASE_URL):
        mc.install_openface_models(True, tmp_path / "cache", "not-a-url", progress=False)


def test_negative_retries_rejected(tmp_path, server):
    with pytest.raises(ValueError, match="retries"):
        _install(server, tmp_path / "cache", retries=-1)


def test_unwritable_root(tmp_path, server):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with pytest.raises(WeightsError, match="cannot write the OpenFace model cache") as info:
        _install(server, blocker / "cache")
    assert mc.ENV_MODELS_DIR in str(info.value)
    assert server.requests == []


def test_concurrent_installs_download_once(tmp_path, server):
    server.delay = 0.05
    root = tmp_path / "cache"
    results: list[dict[str, Path]] = []
    threads = [threading.Thread(target=lambda: results.append(_install(server, root)))
               for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 2 and results[0] == results[1]
    assert len(server.requests) == 3


# --------------------------------------------------------------------------------------------
# checking the cache


def test_missing_file_error_names_path_and_fix(tmp_path, server):
    with pytest.raises(WeightsError) as info:
        mc.require_dat_path("pnet", tmp_path / "cache")
    message = str(info.value)
    assert "\n" not in message
    assert str(mc.dat_path("pnet", tmp_path / "cache")) in message
    assert "missing" in message and "--accept-license" in message and mc.ENV_MODELS_DIR in message
    assert mc.installed_dat_paths(tmp_path / "cache") is None


def test_corrupt_file_in_cache_is_reported_then_repaired(tmp_path, server):
    root = tmp_path / "cache"
    _install(server, root)
    path = mc.dat_path("rnet", root)
    path.write_bytes(b"\0" * mc.MANIFEST["rnet"].size)
    with pytest.raises(WeightsError) as info:
        mc.require_dat_path("rnet", root)
    message = str(info.value)
    assert "\n" not in message
    assert f"{path} has SHA-256" in message and mc.MANIFEST["rnet"].sha256 in message
    assert mc.installed_dat_paths(root) is None
    assert mc.require_dat_path("pnet", root) == mc.dat_path("pnet", root)

    server.requests.clear()
    _install(server, root)
    assert server.requests == [f"/{mc.MANIFEST['rnet'].relpath}"]
    assert mc.require_dat_path("rnet", root) == path


def test_truncated_file_in_cache(tmp_path, server):
    root = tmp_path / "cache"
    _install(server, root)
    path = mc.dat_path("onet", root)
    path.write_bytes(path.read_bytes()[:-1])
    with pytest.raises(WeightsError, match=f"has {FAKE_SIZES['onet'] - 1} bytes, expected"):
        mc.require_dat_path("onet", root)


def test_unreadable_path_in_cache(tmp_path, server):
    path = mc.dat_path("pnet", tmp_path / "cache")
    path.mkdir(parents=True)  # a folder where the file should be
    with pytest.raises(WeightsError, match="is a folder, not a regular file"):
        mc.require_dat_path("pnet", tmp_path / "cache")


@pytest.fixture
def fifo(tmp_path):
    """A FIFO where ``PNet.dat`` should be in ``tmp_path / "cache"``; if something opens it for reading, a writer
    opens and closes it after 10 s, so a reader that blocks gets end of file instead of hanging the tests."""
    path = mc.dat_path("pnet", tmp_path / "cache")
    path.parent.mkdir(parents=True)
    os.mkfifo(path)
    done = threading.Event()

    def unblock() -> None:
        if not done.wait(10.0):
            with contextlib.suppress(OSError):  # ENXIO: no reader is waiting
                os.close(os.open(path, os.O_WRONLY | os.O_NONBLOCK))

    guard = threading.Thread(target=unblock, daemon=True)
    guard.start()
    yield path
    done.set()
    guard.join()


def test_a_fifo_in_the_cache_is_one_line_without_opening_it(tmp_path, fifo, caplog):
    from mtcnn_lab.weights.sets import load_weights

    start = time.monotonic()
    with pytest.raises(WeightsError, match=r"PNet\.dat is a FIFO, not a regular file.*delete it"):
        mc.require_dat_path("pnet", tmp_path / "cache")
    assert mc.installed_dat_paths(tmp_path / "cache") is None
    assert [row["present"] for row in mc.cache_status(tmp_path / "cache")] == [False] * 3
    with caplog.at_level("WARNING", logger="mtcnn_lab.weights.sets"):
        assert load_weights("auto", models_root=tmp_path / "cache").name == "zhang2016"
    assert "using the bundled zhang2016 weights" in caplog.text and "FIFO" in caplog.text
    assert time.monotonic() - start < 5.0  # nothing waited for a writer
    assert stat.S_ISFIFO(fifo.stat().st_mode)  # left as it is


def test_read_dat_of_a_fifo_is_one_line_without_opening_it(fifo):
    from mtcnn_lab.weights.dat import read_dat

    start = time.monotonic()
    with pytest.raises(WeightsError, match=r"PNet\.dat: a FIFO, not a regular file; give the path of a \.dat file"):
        read_dat(fifo, "pnet")
    assert time.monotonic() - start < 5.0


def test_models_command_lists_a_fifo_without_hanging(tmp_path, fifo):
    start = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "mtcnn_lab.cli", "models", "--dir", str(tmp_path / "cache")],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert done.stdout.splitlines()[0].split()[:2] == ["pnet", "missing"]
    assert time.monotonic() - start < 9.0  # not woken by the fixture's writer


def test_hash_is_cached_until_the_file_changes(tmp_path, server, monkeypatch):
    root = tmp_path / "cache"
    _install(server, root)
    calls = []
    real_hash = mc._hash_stream
    monkeypatch.setattr(mc, "_hash_stream", lambda handle: calls.append(1) or real_hash(handle))
    assert mc.installed_dat_paths(root) is not None
    first = len(calls)
    assert mc.installed_dat_paths(root) is not None
    assert len(calls) == first  # unchanged files are not hashed again

    path = mc.dat_path("pnet", root)
    data = bytearray(path.read_bytes())
    data[0] ^= 1
    path.write_bytes(bytes(data))
    with pytest.raises(WeightsError, match="SHA-256"):
        mc.require_dat_path("pnet", root)
    assert len(calls) == first + 1


def test_cache_status_rows(tmp_path, server):
    root = tmp_path / "cache"
    _install(server, root)
    mc.dat_path("pnet", root).unlink()
    mc.dat_path("rnet", root).write_bytes(b"short")
    onet = mc.dat_path("onet", root)
    onet.write_bytes(b"\0" * mc.MANIFEST["onet"].size)
    rows = {row["net"]: row for row in mc.cache_status(root)}
    assert rows["pnet"] == {"net": "pnet", "path": mc.dat_path("pnet", root), "present": False,
                            "size_ok": False, "sha256_ok": False}
    assert (rows["rnet"]["present"], rows["rnet"]["size_ok"]) == (True, False)
    assert (rows["onet"]["size_ok"], rows["onet"]["sha256_ok"]) == (True, False)

    _install(server, root)
    assert all(row["present"] and row["size_ok"] and row["sha256_ok"]
               for row in mc.cache_status(root))


# --------------------------------------------------------------------------------------------
# the real files (read-only shared cache)


needs_shared = pytest.mark.skipif(
    not SHARED_MODELS.is_dir(),
    reason=f"OpenFace's model files are not available at {SHARED_MODELS} (read-only shared cache)",
)


@needs_shared
def test_shared_cache_is_complete_and_valid():
    paths = mc.installed_dat_paths(SHARED_MODELS)
    assert paths is not None
    assert {net: path.name for net, path in paths.items()} == {
        "pnet": "PNet.dat", "rnet": "RNet.dat", "onet": "ONet.dat"}
    assert all(row["sha256_ok"] for row in mc.cache_status(SHARED_MODELS))
    assert mc.require_dat_path("ONet", SHARED_MODELS) == paths["onet"]


@needs_shared
def test_shared_cache_install_returns_without_consent_or_network(monkeypatch):
    monkeypatch.setenv(mc.ENV_BASE_URL, "http://127.0.0.1:9/unreachable")
    paths = mc.install_openface_models(root=SHARED_MODELS, progress=False)
    assert paths == mc.installed_dat_paths(SHARED_MODELS)
