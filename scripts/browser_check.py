#!/usr/bin/env python
"""Notebook 05's widget viewer in a real browser: JupyterLab headless, driven by headless Chromium.

Copies ``notebooks/05_end_to_end_iou.ipynb`` into a temporary folder with its parameters set
(quick mode, results into the temporary folder), starts ``jupyter lab`` there (127.0.0.1, a free
port, a random token, no browser), opens the notebook in headless Chromium through Debian's
``chromedriver`` and selenium, runs every cell with JupyterLab's ``notebook:run-all-cells`` command
(so the kernel and the widgets are live in that browser session), waits for the viewer's image,
moves the frame slider with the keyboard (focus the slider handle, press ArrowRight) and waits until
the image's ``src`` and the readout change. Screenshots of the viewer before and after go to
``OUT/05_widget_browser_before.png`` and ``..._after.png``. Every wait is bounded; jupyter, the
kernel, chromedriver and Chromium are always stopped. Nothing is downloaded.

    .venv/bin/python scripts/widget_screenshot.py [--out results/figures] [--full] [--timeout 240]

Needs ``/usr/bin/chromium`` and ``/usr/bin/chromedriver`` (Debian: ``apt-get install -y chromium
chromium-driver``) and the ``notebooks`` extra (jupyterlab, selenium). Used by
``tests/test_widget_browser.py``.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import http.client
import importlib.util
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
NOTEBOOK = REPO / "notebooks" / "05_end_to_end_iou.ipynb"
CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--disable-dev-shm-usage", "--window-size=1400,1600", "--hide-scrollbars"]
BEFORE, AFTER = "05_widget_browser_before.png", "05_widget_browser_after.png"


class BrowserCheckFailed(RuntimeError):
    """A step of the browser check did not happen in time; the message says which and shows the logs."""


def missing_requirements() -> str | None:
    """Why the check cannot run here (a one-line reason), or ``None`` when everything is installed."""
    for path in (CHROMIUM, CHROMEDRIVER):
        if not os.access(path, os.X_OK):
            return f"{path} not found: install Debian's browser with apt-get install -y chromium chromium-driver"
    for module, what in (("jupyterlab", "jupyterlab"), ("selenium", "selenium"), ("ipywidgets", "ipywidgets")):
        if importlib.util.find_spec(module) is None:
            return f"{what} is not installed: pip install -e '.[notebooks]'"
    if not NOTEBOOK.exists():
        return f"{NOTEBOOK} not found"
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def parameterised_copy(folder: Path, parameters: dict) -> Path:
    """``NOTEBOOK`` copied into ``folder`` with a cell setting ``parameters`` after its parameters cell."""
    import nbformat

    nb = nbformat.read(NOTEBOOK, as_version=4)
    at = next((k + 1 for k, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", [])), 0)
    source = "# Parameters\n" + "".join(f"{k} = {v!r}\n" for k, v in parameters.items())
    nb.cells.insert(at, nbformat.v4.new_code_cell(source, metadata={"tags": ["injected-parameters"]}))
    out = folder / NOTEBOOK.name
    nbformat.write(nb, out)
    return out


def wait_for(condition: Callable[[], object], timeout: float, what: str, logs: Callable[[], str] = str,
             interval: float = 0.25) -> object:
    """Poll ``condition`` until it returns something truthy; raise :class:`BrowserCheckFailed` after ``timeout``.

    Other exceptions of ``condition`` (an element not there yet, a connection refused) count as "not yet";
    a :class:`BrowserCheckFailed` it raises ends the wait at once.
    """
    deadline = time.monotonic() + timeout
    last = "it stayed false"
    while True:
        try:
            value = condition()
            if value:
                return value
        except BrowserCheckFailed:
            raise
        except Exception as err:  # not there yet: poll again until the deadline, keeping why for the message
            last = f"last error: {type(err).__name__}: {err}"
        if time.monotonic() > deadline:
            raise BrowserCheckFailed(f"timed out after {timeout:.0f} s waiting for {what} ({last})\n{logs()}")
        time.sleep(interval)


def _tail(path: Path, n: int = 3000) -> str:
    try:
        return path.read_text(errors="replace")[-n:]
    except OSError:
        return ""


def _stop_group(process: subprocess.Popen | None, grace: float = 10.0) -> None:
    """SIGTERM the process group of ``process`` (started with a new session), SIGKILL after ``grace``."""
    if process is None:
        return
    try:
        pgid = os.getpgid(process.pid)
    except ProcessLookupError:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGTERM)
    try:
        process.wait(grace)
    except subprocess.TimeoutExpired:
        pass
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGKILL)  # the kernel and anything else left in the group
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(5)


def _pids_mentioning(text: str) -> list[int]:
    """Processes whose command line contains ``text`` (our temporary folder: kernels, Chromium), Linux only."""
    pids = []
    for entry in Path("/proc").glob("[0-9]*"):
        with contextlib.suppress(OSError):
            if text.encode() in (entry / "cmdline").read_bytes() and int(entry.name) != os.getpid():
                pids.append(int(entry.name))
    return pids


def _shutdown(base: str, token: str) -> None:
    """Ask jupyter server to stop its kernels and itself (best effort)."""
    request = urllib.request.Request(f"{base}/api/shutdown", method="POST",
                                     headers={"Authorization": f"token {token}"})
    try:
        with urllib.request.urlopen(request, timeout=5):
            pass
    except (OSError, http.client.HTTPException) as err:  # already gone, or not answering: the caller kills it
        print(f"jupyter server shutdown request failed ({err}); stopping it by signal", file=sys.stderr)


_RUN_ALL = """
const done = arguments[arguments.length - 1];
(async () => {
  const app = window.jupyterapp;
  await app.restored;
  const panel = app.shell.currentWidget;
  if (!panel || !panel.sessionContext) { done('no notebook is the current widget'); return; }
  await panel.context.ready;
  await panel.sessionContext.ready;
  app.commands.execute('notebook:run-all-cells');  // not awaited: the caller polls the page
  done('started');
})().catch(err => done('error: ' + err));
"""

_ERRORS = """
return Array.from(document.querySelectorAll(
    '.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]'))
  .map(e => e.innerText).filter(t => /Error|Traceback/.test(t)).join('\\n---\\n').slice(-3000);
"""


def _lab_environment(tmp: Path, quick: bool) -> tuple[Path, dict]:
    """The notebook's parameterised copy in ``tmp/nb`` and a JupyterLab environment that reads and writes
    only under ``tmp`` (no news, no update checks, the environment's own kernel)."""
    workdir = tmp / "nb"
    workdir.mkdir()
    parameterised_copy(workdir, {"quick": bool(quick), "results_dir": str(tmp / "results"),
                                 "manifest": str(REPO / "data" / "manifest.json")})
    settings = tmp / "lab-settings" / "@jupyterlab" / "apputils-extension"
    settings.mkdir(parents=True)
    (settings / "notification.jupyterlab-settings").write_text(
        json.dumps({"fetchNews": "false", "checkForUpdates": False, "doNotDisturbMode": True}))
    env = {**os.environ, "JUPYTER_CONFIG_DIR": str(tmp / "config"), "JUPYTER_RUNTIME_DIR": str(tmp / "runtime"),
           "JUPYTERLAB_SETTINGS_DIR": str(tmp / "lab-settings"),
           "JUPYTERLAB_WORKSPACES_DIR": str(tmp / "lab-workspaces"), "JUPYTER_PLATFORM_DIRS": "1",
           "JUPYTER_DATA_DIR": str(tmp / "data"),  # no user-level kernelspec: the env's own python3 kernel
           "PYDEVD_DISABLE_FILE_VALIDATION": "1", "MPLBACKEND": "Agg"}
    return workdir, env


def _start_jupyter(workdir: Path, env: dict, log_file: Path, log: Callable[[str], None]
                   ) -> tuple[subprocess.Popen, str, str]:
    """JupyterLab serving ``workdir`` on a free loopback port, its output in ``log_file``:
    ``(process, base URL, token)``."""
    port, token = free_port(), secrets.token_hex(16)
    command = [sys.executable, "-m", "jupyterlab", "--no-browser", "--ServerApp.ip=127.0.0.1",
               f"--ServerApp.port={port}", "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}",
               f"--ServerApp.root_dir={workdir}", "--LabApp.expose_app_in_browser=True",
               "--LabApp.news_url=None", *(["--allow-root"] if os.geteuid() == 0 else []),
               "--LabApp.check_for_updates_class=jupyterlab.handlers.announcements.NeverCheckForUpdate"]
    log(f"starting jupyter lab on 127.0.0.1:{port}")
    with open(log_file, "wb") as sink:
        process = subprocess.Popen(command, cwd=workdir, env=env, stdout=sink, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, start_new_session=True)
    return process, f"http://127.0.0.1:{port}", token


def _start_chromium(tmp: Path, log: Callable[[str], None]):
    """Headless Chromium through chromedriver, its profile and log under ``tmp``: ``(driver, service)``."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in [*CHROMIUM_FLAGS, f"--user-data-dir={tmp / 'chromium-profile'}"]:
        options.add_argument(flag)
    service = Service(executable_path=str(CHROMEDRIVER), log_output=str(tmp / "chromedriver.log"),
                      popen_kw={"start_new_session": True})
    log("starting headless chromium")
    driver = webdriver.Chrome(options=options, service=service)
    driver.set_page_load_timeout(60)
    driver.set_script_timeout(90)
    return driver, service


_IMAGE_PIXELS = """
const img = arguments[0];
const canvas = document.createElement('canvas');
canvas.width = img.naturalWidth;
canvas.height = img.naturalHeight;
canvas.getContext('2d').drawImage(img, 0, 0);
return canvas.toDataURL('image/png');
"""
"""JavaScript: the viewer image's pixels as the browser decoded them (a PNG data URL, natural size)."""


def _image_pixels(driver, image) -> bytes:
    """The PNG bytes of what the browser shows in the viewer's ``img`` element, at its natural size."""
    url = driver.execute_script(_IMAGE_PIXELS, image)
    return base64.b64decode(url.split(",", 1)[1])


def _viewer_screenshots(driver, url: str, out_dir: Path, wait_s: float, logs: Callable[[], str],
                        log: Callable[[str], None]) -> dict:
    """Open the notebook at ``url``, run every cell, screenshot the viewer, press ArrowRight on its slider,
    screenshot it again: the paths, image sources and readouts before and after."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    driver.get(url)
    wait_for(lambda: driver.execute_script(
        "return !!(window.jupyterapp && document.querySelector('.jp-NotebookPanel .jp-Cell'))"),
        90, "JupyterLab to open the notebook", logs)
    started = driver.execute_async_script(_RUN_ALL)
    if started != "started":
        raise BrowserCheckFailed(f"could not run the notebook: {started}\n{logs()}")
    log("running all cells in the browser's kernel")

    def failed_or(selector: str):
        def check():
            errors = driver.execute_script(_ERRORS)
            if errors:
                raise BrowserCheckFailed(f"the notebook raised an error in the browser:\n{errors}")
            return driver.find_elements(By.CSS_SELECTOR, selector)
        return check

    image = wait_for(failed_or("img.mtcnn-viewer-image"), wait_s, "the viewer's image", logs)[0]
    wait_for(lambda: driver.execute_script(
        "const r = document.querySelector('.mtcnn-viewer-readout'); return r && r.innerText.includes('frame 1/')"),
        30, "the viewer's readout", logs)
    wait_for(lambda: driver.execute_script("return arguments[0].complete && arguments[0].naturalWidth > 0",
                                           image), 30, "the first frame to load", logs)
    viewer = driver.find_element(By.CSS_SELECTOR, ".mtcnn-viewer")
    driver.execute_script("arguments[0].scrollIntoView({block: 'start'})", viewer)
    time.sleep(0.5)  # let the scroll settle before the screenshot
    src_before = image.get_attribute("src")
    pixels_before = _image_pixels(driver, image)
    readout_before = driver.find_element(By.CSS_SELECTOR, ".mtcnn-viewer-readout").text
    before = out_dir / BEFORE
    viewer.screenshot(str(before))
    log(f"before: {readout_before.splitlines()[0] if readout_before else '?'}")

    handle = driver.find_element(By.CSS_SELECTOR, ".mtcnn-viewer-slider .noUi-handle")
    driver.execute_script("arguments[0].focus()", handle)
    handle.send_keys(Keys.ARROW_RIGHT)

    def moved():
        img = driver.find_element(By.CSS_SELECTOR, "img.mtcnn-viewer-image")
        readout = driver.find_element(By.CSS_SELECTOR, ".mtcnn-viewer-readout").text
        src = img.get_attribute("src")
        loaded = driver.execute_script("return arguments[0].complete && arguments[0].naturalWidth > 0", img)
        return (src, readout) if src != src_before and "frame 2/" in readout and loaded else None

    src_after, readout_after = wait_for(moved, 30, "the image to change after ArrowRight on the slider", logs)
    pixels_after = _image_pixels(driver, driver.find_element(By.CSS_SELECTOR, "img.mtcnn-viewer-image"))
    time.sleep(0.5)
    after = out_dir / AFTER
    driver.find_element(By.CSS_SELECTOR, ".mtcnn-viewer").screenshot(str(after))
    log(f"after: {readout_after.splitlines()[0]}")
    return {"before": before, "after": after, "src_before": src_before, "src_after": src_after,
            "readout_before": readout_before, "readout_after": readout_after,
            "pixels_before": pixels_before, "pixels_after": pixels_after}


def _stop_everything(driver, service, jupyter, base: str | None, token: str | None, tmp: Path) -> None:
    """Quit the browser, stop chromedriver and JupyterLab (and any kernel or browser process left under
    ``tmp``), delete ``tmp``. What fails to stop is logged to stderr, the cleanup goes on."""
    if driver is not None:
        try:
            driver.quit()
        except Exception as err:  # the browser may have crashed already
            print(f"widget_screenshot: chromium did not quit ({type(err).__name__}: {err})", file=sys.stderr)
    if service is not None:
        _stop_group(getattr(service, "process", None), grace=5)
    if jupyter is not None and base is not None:
        _shutdown(base, token)
        with contextlib.suppress(subprocess.TimeoutExpired):
            jupyter.wait(10)
    _stop_group(jupyter)
    for pid in _pids_mentioning(str(tmp)):  # a kernel (own session) or browser process left behind
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    shutil.rmtree(tmp, ignore_errors=True)


def capture(out_dir: str | Path, quick: bool = True, timeout: float = 150.0,
            log: Callable[[str], None] = lambda _: None) -> dict:
    """Run the browser check; write the two screenshots into ``out_dir``; return what was observed.

    Returns ``{"before", "after"}`` (paths), ``src_before`` / ``src_after`` (the image ``src``:
    blob URLs), ``pixels_before`` / ``pixels_after`` (PNG bytes of the viewer image as the browser shows
    it, natural size), ``readout_before`` / ``readout_after``, ``changed_pixels`` (share of pixels that
    differ between the two screenshots) and ``seconds``. Raises :class:`BrowserCheckFailed`.
    """
    reason = missing_requirements()
    if reason:
        raise BrowserCheckFailed(reason)
    start = time.monotonic()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="mtcnn-widget-browser-"))
    jupyter = driver = service = None
    base = token = None
    jupyter_log = tmp / "jupyter.log"

    def logs() -> str:
        text = f"--- jupyter log ({jupyter_log}) ---\n{_tail(jupyter_log)}"
        if driver is not None:
            try:
                text += f"\n--- notebook errors ---\n{driver.execute_script(_ERRORS)}"
            except Exception as err:  # the page is gone: the jupyter log is what is left
                text += f"\n--- notebook errors: unreadable ({type(err).__name__}) ---"
        return text

    try:
        # 1. JupyterLab on the parameterised notebook
        workdir, env = _lab_environment(tmp, quick)
        jupyter, base, token = _start_jupyter(workdir, env, jupyter_log, log)

        def server_up() -> bool:
            if jupyter.poll() is not None:
                raise BrowserCheckFailed(f"jupyter lab exited with {jupyter.returncode}\n{logs()}")
            with urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2) as response:
                return response.status == 200

        wait_for(server_up, 60, "jupyter lab to answer", logs)
        # 2. the browser, 3. the notebook run and the two screenshots
        driver, service = _start_chromium(tmp, log)
        seen = _viewer_screenshots(driver, f"{base}/lab/tree/{NOTEBOOK.name}?token={token}", out_dir,
                                   max(30.0, timeout - (time.monotonic() - start)), logs, log)
        return {**seen, "changed_pixels": changed_pixels(seen["before"], seen["after"]),
                "seconds": time.monotonic() - start}
    finally:
        _stop_everything(driver, service, jupyter, base, token, tmp)


def changed_pixels(a: Path, b: Path) -> float:
    """Share of pixels that differ between two screenshots, over the larger of the two sizes
    (pixels outside the smaller one count as changed)."""
    import cv2
    import numpy as np

    x, y = cv2.imread(str(a)), cv2.imread(str(b))
    if x is None or y is None:
        return 1.0
    h, w = min(x.shape[0], y.shape[0]), min(x.shape[1], y.shape[1])
    same = np.all(x[:h, :w] == y[:h, :w], axis=2).sum()
    return float(1.0 - same / max(x.shape[0] * x.shape[1], y.shape[0] * y.shape[1]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=str(REPO / "results" / "figures"), help="folder for the screenshots")
    parser.add_argument("--full", action="store_true", help="run the notebook on the full data set, not quick")
    parser.add_argument("--timeout", type=float, default=240.0, help="seconds allowed for the whole check")
    args = parser.parse_args(argv)
    reason = missing_requirements()
    if reason:
        print(f"cannot run: {reason}", file=sys.stderr)
        return 2
    try:
        result = capture(args.out, quick=not args.full, timeout=args.timeout, log=print)
    except BrowserCheckFailed as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(f"{result['before']}\n{result['after']}\n{result['changed_pixels']:.1%} of the pixels changed; "
          f"{result['seconds']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
