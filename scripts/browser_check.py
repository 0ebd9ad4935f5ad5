#!/usr/bin/env python
"""The workbench as a researcher opens it: JupyterLab headless, each notebook run in headless Chromium.

Lays out a project in a temporary folder the way a clone is laid out (``notebooks/`` with copies of the
numbered notebooks, ``data/manifest.json``, ``results/``, and ``shared`` beside it, a link to the repository's
``../shared``), sets ``quick = True`` in each copy (a cell after its parameters cell; nothing else is passed,
so each notebook finds its manifest, results and shared folder by itself, as in a fresh clone), starts
``jupyter lab`` there (127.0.0.1, a free port, a random token, no browser) and, in headless Chromium driven
through Debian's ``chromedriver`` and selenium, opens each notebook and runs it with JupyterLab's
``notebook:run-all-cells`` command, so the kernel and the widgets are live in that browser session. A cell that
fails, or an error shown in any output, fails the check. In notebook 05 the viewer is then driven: ArrowRight on
the frame slider, another backend in its menu, a zoom on a face; the image and the readout must change each
time. Screenshots of the viewer before and after the slider go to ``OUT/05_widget_browser_before.png`` and
``..._after.png``. Every wait is bounded; jupyter, the kernels, chromedriver and Chromium are always stopped.
Nothing is downloaded.

    .venv/bin/python scripts/browser_check.py [--out results/figures] [--only 05] [--full] [--timeout 900]

Needs ``/usr/bin/chromium`` and ``/usr/bin/chromedriver`` (Debian: ``apt-get install -y chromium
chromium-driver``) and the ``notebooks`` extra (jupyterlab, selenium). Used by ``tests/test_widget_browser.py``.
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
from collections.abc import Callable, Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = REPO / "notebooks"
VIEWER_NOTEBOOK = "05_end_to_end_iou.ipynb"
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
    if not (REPO / "data" / "manifest.json").is_file():
        return f"{REPO / 'data' / 'manifest.json'} not found"
    return None


def notebook_names(only: Sequence[str] = ()) -> list[str]:
    """The numbered notebooks of the repository (``NN_name.ipynb``), those starting with a prefix of ``only``."""
    names = sorted(p.name for p in NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
    return [n for n in names if not only or any(n.startswith(prefix) for prefix in only)]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def quick_copy(name: str, folder: Path, quick: bool) -> Path:
    """Notebook ``name`` copied into ``folder`` with a cell setting ``quick`` after its parameters cell."""
    import nbformat

    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    at = next((k + 1 for k, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", [])), 0)
    nb.cells.insert(at, nbformat.v4.new_code_cell(f"quick = {bool(quick)!r}",
                                                  metadata={"tags": ["injected-parameters"]}))
    out = folder / name
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
  if (panel.context.path !== arguments[0]) { done('the current notebook is ' + panel.context.path); return; }
  await panel.context.ready;
  await panel.sessionContext.ready;
  window.mtcnnRunAll = 'running';
  app.commands.execute('notebook:run-all-cells')  // not awaited here: the caller polls window.mtcnnRunAll
    .then(ok => { window.mtcnnRunAll = ok === false ? 'failed' : 'done'; })
    .catch(err => { window.mtcnnRunAll = 'error: ' + err; });
  done('started');
})().catch(err => done('error: ' + err));
"""

_ERRORS = """
return Array.from(document.querySelectorAll(
    '.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]'))
  .map(e => e.innerText).filter(t => /Error|Traceback/.test(t)).join('\\n---\\n').slice(-3000);
"""
"""JavaScript: the text of error outputs shown in the open notebook (a traceback, an error logged to stderr)."""

_KERNEL_ID = """
const panel = window.jupyterapp.shell.currentWidget;
const session = panel && panel.sessionContext && panel.sessionContext.session;
return session && session.kernel ? session.kernel.id : null;
"""


def _lab_environment(tmp: Path, names: Sequence[str], quick: bool) -> tuple[Path, dict]:
    """A project laid out as a clone in ``tmp/project`` (quick copies of ``names`` in ``notebooks/``, the
    repository's ``data/manifest.json``, ``shared`` beside it linked to the repository's) and a JupyterLab
    environment that reads and writes only under ``tmp`` (no news, no update checks, the environment's own kernel)."""
    project = tmp / "project"
    (project / "notebooks").mkdir(parents=True)
    (project / "data").mkdir()
    shutil.copy2(REPO / "data" / "manifest.json", project / "data" / "manifest.json")
    shared = REPO.parent / "shared"
    if shared.exists():
        (tmp / "shared").symlink_to(shared.resolve(), target_is_directory=True)
    for name in names:
        quick_copy(name, project / "notebooks", quick)
    settings = tmp / "lab-settings" / "@jupyterlab" / "apputils-extension"
    settings.mkdir(parents=True)
    (settings / "notification.jupyterlab-settings").write_text(
        json.dumps({"fetchNews": "false", "checkForUpdates": False, "doNotDisturbMode": True}))
    env = {**os.environ, "JUPYTER_CONFIG_DIR": str(tmp / "config"), "JUPYTER_RUNTIME_DIR": str(tmp / "runtime"),
           "JUPYTERLAB_SETTINGS_DIR": str(tmp / "lab-settings"),
           "JUPYTERLAB_WORKSPACES_DIR": str(tmp / "lab-workspaces"), "JUPYTER_PLATFORM_DIRS": "1",
           "JUPYTER_DATA_DIR": str(tmp / "data"),  # no user-level kernelspec: the env's own python3 kernel
           "PYDEVD_DISABLE_FILE_VALIDATION": "1", "MPLBACKEND": "Agg"}
    env.pop("MTCNN_LAB_MANIFEST", None)  # the notebooks find the project's manifest themselves
    return project, env


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


def _run_in_browser(driver, url: str, path: str, wait_s: float, logs: Callable[[], str]) -> str:
    """Open the notebook at ``url`` (``path`` in the project) and run every cell in the browser's kernel; raise
    :class:`BrowserCheckFailed` when it is not the current notebook, a cell fails or an error is shown; the
    kernel's id."""
    driver.get(url)
    wait_for(lambda: driver.execute_script(
        "return !!(window.jupyterapp && document.querySelector('.jp-NotebookPanel .jp-Cell'))"),
        90, "JupyterLab to open the notebook", logs)
    wait_for(lambda: driver.execute_script(
        "const w = window.jupyterapp.shell.currentWidget; return w && w.context && w.context.path") == path,
        30, f"{path} to be the current notebook", logs)
    started = driver.execute_async_script(_RUN_ALL, path)
    if started != "started":
        raise BrowserCheckFailed(f"could not run the notebook: {started}\n{logs()}")

    def finished():
        errors = driver.execute_script(_ERRORS)
        if errors:
            raise BrowserCheckFailed(f"the notebook shows an error in the browser:\n{errors}")
        state = driver.execute_script("return window.mtcnnRunAll")
        if state not in ("running", "done"):
            raise BrowserCheckFailed(f"running all cells ended with {state!r}\n{logs()}")
        return state == "done"

    wait_for(finished, wait_s, "every cell to run", logs, interval=1.0)
    return driver.execute_script(_KERNEL_ID)


def _stop_kernel(base: str, token: str, kernel_id: str | None) -> None:
    """Shut the notebook's kernel down through the server's REST API, so that notebooks do not pile up."""
    if not kernel_id:
        return
    request = urllib.request.Request(f"{base}/api/kernels/{kernel_id}", method="DELETE",
                                     headers={"Authorization": f"token {token}"})
    try:
        with urllib.request.urlopen(request, timeout=30):
            pass
    except (OSError, http.client.HTTPException) as err:  # gone already: the final cleanup kills what is left
        print(f"browser_check: kernel {kernel_id} did not stop on request ({err})", file=sys.stderr)


_LAYOUT = """
const img = document.querySelector('img.mtcnn-viewer-image');
const readout = document.querySelector('.mtcnn-viewer-readout');
const cell = img.closest('.jp-Cell');
const r = img.getBoundingClientRect(), t = readout.getBoundingClientRect(), c = cell.getBoundingClientRect();
return {natural: img.naturalWidth, shown: r.width, image_right: r.right, image_bottom: r.bottom,
        readout_left: t.left, readout_top: t.top, readout_right: t.right, cell_right: c.right};
"""
"""JavaScript: where the viewer's image and readout are, and the cell's right edge (CSS pixels)."""


def _drive_viewer(driver, out_dir: Path, logs: Callable[[], str], log: Callable[[str], None]) -> dict:
    """In the run notebook 05: screenshot the viewer, press ArrowRight on its slider, screenshot it again, pick
    another backend, zoom on a face; each must change the image and the readout. What was seen, as a dict."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import Select

    def find(selector: str):
        return driver.find_element(By.CSS_SELECTOR, selector)

    def readout() -> str:
        return find(".mtcnn-viewer-readout").text

    image = wait_for(lambda: driver.find_elements(By.CSS_SELECTOR, "img.mtcnn-viewer-image"), 60,
                     "the viewer's image", logs)[0]
    wait_for(lambda: "view 1/" in readout(), 30, "the viewer's readout", logs)
    wait_for(lambda: driver.execute_script("return arguments[0].complete && arguments[0].naturalWidth > 0",
                                           image), 30, "the first frame to load", logs)
    viewer = find(".mtcnn-viewer")
    driver.execute_script("arguments[0].scrollIntoView({block: 'start'})", viewer)
    time.sleep(0.5)  # let the scroll settle before the screenshot
    layout = driver.execute_script(_LAYOUT)
    src_before, readout_before = image.get_attribute("src"), readout()
    pixels_before = _image_pixels(driver, image)
    before = out_dir / BEFORE
    viewer.screenshot(str(before))
    log(f"viewer: {readout_before.splitlines()[0] if readout_before else '?'}")

    def changed(since_src: str, text: str):
        def check():
            img = find("img.mtcnn-viewer-image")
            src, shown = img.get_attribute("src"), readout()
            loaded = driver.execute_script("return arguments[0].complete && arguments[0].naturalWidth > 0", img)
            return (src, shown) if src != since_src and text in shown and loaded else None
        return check

    handle = find(".mtcnn-viewer-slider .noUi-handle")
    driver.execute_script("arguments[0].focus()", handle)
    handle.send_keys(Keys.ARROW_RIGHT)
    src_after, readout_after = wait_for(changed(src_before, "view 2/"), 30,
                                        "the image to change after ArrowRight on the slider", logs)
    pixels_after = _image_pixels(driver, find("img.mtcnn-viewer-image"))
    time.sleep(0.5)
    after = out_dir / AFTER
    find(".mtcnn-viewer").screenshot(str(after))

    backends = Select(find(".mtcnn-viewer-backend select"))
    other = backends.options[-1].text
    backends.select_by_visible_text(other)
    src_backend, readout_backend = wait_for(changed(src_after, f"Python [{other}]"), 30,
                                            f"the viewer to show {other} after choosing it", logs)
    zoom = Select(find(".mtcnn-viewer-zoom select"))
    target = next(o.text for o in zoom.options if o.text != "whole frame")
    zoom.select_by_visible_text(target)
    _, readout_zoom = wait_for(changed(src_backend, f"zoom: {target}"), 30, f"the viewer to zoom on {target}", logs)
    log(f"viewer answered the slider, the backend menu ({other}) and the zoom ({target})")
    return {"before": before, "after": after, "src_before": src_before, "src_after": src_after,
            "readout_before": readout_before, "readout_after": readout_after, "readout_backend": readout_backend,
            "readout_zoom": readout_zoom, "backend": other, "zoom": target, "layout": layout,
            "pixels_before": pixels_before, "pixels_after": pixels_after}


def _stop_everything(driver, service, jupyter, base: str | None, token: str | None, tmp: Path) -> None:
    """Quit the browser, stop chromedriver and JupyterLab (and any kernel or browser process left under
    ``tmp``), delete ``tmp``. What fails to stop is logged to stderr, the cleanup goes on."""
    if driver is not None:
        try:
            driver.quit()
        except Exception as err:  # the browser may have crashed already
            print(f"browser_check: chromium did not quit ({type(err).__name__}: {err})", file=sys.stderr)
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


def check_notebooks(out_dir: str | Path, only: Sequence[str] = (), quick: bool = True, timeout: float = 900.0,
                    log: Callable[[str], None] = lambda _: None) -> dict:
    """Run the browser check on the notebooks of ``only`` (prefixes; default all); when notebook 05 is among them,
    drive its viewer and write its two screenshots into ``out_dir``. Raises :class:`BrowserCheckFailed`.

    Returns ``notebooks`` (name -> seconds its run took in the browser), ``seconds`` and, with 05, ``viewer``:
    ``before`` / ``after`` (screenshot paths), ``src_*`` (the image ``src``: blob URLs), ``pixels_before`` /
    ``pixels_after`` (PNG bytes of the viewer image as the browser shows it, natural size), ``readout_before`` /
    ``readout_after`` / ``readout_backend`` / ``readout_zoom``, ``layout`` (positions of the image and the
    readout, CSS pixels) and ``changed_pixels`` (share of pixels that differ between the two screenshots).
    """
    reason = missing_requirements()
    if reason:
        raise BrowserCheckFailed(reason)
    names = notebook_names(only)
    if not names:
        raise BrowserCheckFailed(f"no notebook in {NOTEBOOKS} starts with {', '.join(only)}")
    start = time.monotonic()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="mtcnn-browser-check-"))
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
        project, env = _lab_environment(tmp, names, quick)
        jupyter, base, token = _start_jupyter(project, env, jupyter_log, log)

        def server_up() -> bool:
            if jupyter.poll() is not None:
                raise BrowserCheckFailed(f"jupyter lab exited with {jupyter.returncode}\n{logs()}")
            with urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2) as response:
                return response.status == 200

        wait_for(server_up, 60, "jupyter lab to answer", logs)
        driver, service = _start_chromium(tmp, log)
        seconds, viewer = {}, None
        for name in names:
            began = time.monotonic()
            left = timeout - (began - start)
            if left < 30:
                raise BrowserCheckFailed(f"out of time ({timeout:.0f} s) before {name}; ran {', '.join(seconds)}")
            log(f"{name}: running all cells in the browser")
            # a workspace of its own: JupyterLab would otherwise reopen (and restart kernels for) the notebooks
            # opened before, and the notebook under test might not be the current one
            url = f"{base}/lab/workspaces/check-{name[:2]}/tree/notebooks/{name}?token={token}"
            kernel = _run_in_browser(driver, url, f"notebooks/{name}", left, logs)
            if name == VIEWER_NOTEBOOK:
                viewer = _drive_viewer(driver, out_dir, logs, log)
                viewer["changed_pixels"] = changed_pixels(viewer["before"], viewer["after"])
            _stop_kernel(base, token, kernel)
            seconds[name] = time.monotonic() - began
            log(f"{name}: no error, {seconds[name]:.0f} s")
        return {"notebooks": seconds, "viewer": viewer, "seconds": time.monotonic() - start}
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
    parser.add_argument("--only", nargs="*", default=[], help="notebook prefixes, e.g. 05 07 (default: all)")
    parser.add_argument("--full", action="store_true", help="run the notebooks on the full data set, not quick")
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds allowed for the whole check")
    args = parser.parse_args(argv)
    reason = missing_requirements()
    if reason:
        print(f"cannot run: {reason}", file=sys.stderr)
        return 2
    try:
        result = check_notebooks(args.out, only=args.only, quick=not args.full, timeout=args.timeout, log=print)
    except BrowserCheckFailed as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    if result["viewer"]:
        print(f"{result['viewer']['before']}\n{result['viewer']['after']}")
    print(f"{len(result['notebooks'])} notebooks ran in the browser without error; {result['seconds']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
