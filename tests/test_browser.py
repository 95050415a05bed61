"""A real JupyterLab in headless Chromium: run notebooks/03_toc.ipynb, move a TOC slider, and check
that the selection readout and the heatmap image change.

Marked `browser`; skipped with a reason when /usr/bin/chromium or playwright is missing. The server
runs on 127.0.0.1 with a token, with every Jupyter / IPython / Chromium folder inside a temporary
directory and HDCID_QUICK=1; the notebook is copied there first so JupyterLab's autosave can never
write outputs into the committed file. A screenshot goes to `<repo>/outputs/test-browser/`.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")
SHOTS = REPO / "outputs" / "test-browser"
CHROME_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_http(url: str, proc: subprocess.Popen, log: Path, timeout: float = 90.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc.poll() is not None:
            tail = log.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"jupyter lab exited early with code {proc.returncode}; log tail:\n{tail}")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise TimeoutError(f"jupyter lab did not answer {url} within {timeout:.0f} s")


def _accept_dialog(page, wait_ms: int = 0) -> bool:
    """Click the accept button of a JupyterLab dialog (e.g. "Select Kernel") if one shows up."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    button = page.locator(".jp-Dialog .jp-mod-accept").first
    if wait_ms:
        try:
            button.wait_for(timeout=wait_ms)
        except PlaywrightTimeout:
            return False
    if button.count():
        button.click()
        return True
    return False


def _kernel_ready(page, timeout_s: float = 90.0) -> None:
    """Wait until the status bar says the kernel is idle, accepting a kernel dialog on the way."""
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        _accept_dialog(page)
        if any("| Idle" in t for t in page.locator(".jp-StatusBar-Widget").all_inner_texts()):
            return
        page.wait_for_timeout(500)
    raise TimeoutError(f"the notebook kernel did not become idle within {timeout_s:.0f} s")


@pytest.fixture
def lab(tmp_path):
    """A JupyterLab server over a temporary folder holding a copy of 03_toc.ipynb."""
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} not found (apt-get install -y chromium)")
    pytest.importorskip("playwright.sync_api", reason="python playwright is not installed")
    work = tmp_path / "work"
    work.mkdir()
    shutil.copy(REPO / "notebooks" / "03_toc.ipynb", work / "03_toc.ipynb")
    env = dict(os.environ)
    for key, sub in (
        ("JUPYTER_CONFIG_DIR", "jcfg"),
        ("JUPYTER_DATA_DIR", "jdata"),
        ("JUPYTER_RUNTIME_DIR", "jrun"),
        ("IPYTHONDIR", "ipython"),
        ("HDCID_CACHE", "cache"),
        ("HDCID_OUTPUT", "out"),
        ("HDCID_DEMO_ROOT", "demo"),
    ):
        env[key] = str(tmp_path / sub)
    env["HDCID_QUICK"] = "1"
    env.pop("JUPYTER_PATH", None)
    port, token = _free_port(), secrets.token_hex(16)
    jupyter = Path(sys.executable).parent / "jupyter"
    log_path = tmp_path / "lab.log"
    log = open(log_path, "wb")
    cmd = [
        str(jupyter),
        "lab",
        "--no-browser",
        f"--ServerApp.token={token}",
        f"--port={port}",
        "--ServerApp.ip=127.0.0.1",
        "--ServerApp.port_retries=0",
        f"--ServerApp.root_dir={work}",
        "--LabApp.news_url=",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        "--LabApp.extension_manager=readonly",
    ]
    if hasattr(os, "geteuid") and os.geteuid() == 0:  # containers often run as root
        cmd.append("--allow-root")
    proc = subprocess.Popen(cmd, cwd=work, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        _wait_http(f"http://127.0.0.1:{port}/api/status?token={token}", proc, log_path)
        yield {"url": f"http://127.0.0.1:{port}/lab/tree/03_toc.ipynb?token={token}", "tmp": tmp_path}
    finally:  # stop the server we started, by its process id
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        log.close()


def test_toc_slider_updates_readout_and_heatmap(lab):
    from playwright.sync_api import sync_playwright

    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        # a persistent context is how playwright takes Chromium's --user-data-dir (inside tmp)
        browser = pw.chromium.launch_persistent_context(
            str(lab["tmp"] / "chromium-profile"),
            executable_path=str(CHROMIUM),
            args=CHROME_ARGS,
            headless=True,
            viewport={"width": 1400, "height": 1000},
        )
        try:
            page = browser.new_page()
            page.goto(lab["url"], wait_until="domcontentloaded", timeout=90_000)
            page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=90_000)
            _kernel_ready(page)
            page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
            page.locator("li.lm-Menu-item[data-command='runmenu:run-all']").click()
            _accept_dialog(page, wait_ms=3000)  # a late "Select Kernel" dialog, if any
            readout = page.locator(".hdcid-toc-readout")
            try:
                readout.wait_for(timeout=170_000)
            except Exception:
                page.screenshot(path=str(SHOTS / "03_toc-timeout.png"), full_page=True)
                errors = page.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']")
                detail = "\n".join(errors.all_inner_texts())[-3000:]
                raise AssertionError(f"the TOC widget did not appear; stderr outputs:\n{detail}") from None
            page.wait_for_function(
                "() => { const e = document.querySelector('.hdcid-toc-readout');"
                " return e && e.innerText.includes('probe accuracy'); }",
                timeout=60_000,
            )
            image = page.locator("img.hdcid-toc-image")
            image.scroll_into_view_if_needed()
            before_text, before_src = readout.inner_text(), image.get_attribute("src")
            assert "keep 32 of 64 dims" in before_text, before_text
            handle = page.locator(".hdcid-toc-explorer .widget-slider .noUi-handle").first
            handle.focus()
            page.keyboard.press("ArrowRight")
            page.wait_for_function(
                "(old) => { const e = document.querySelector('.hdcid-toc-readout'); return e && e.innerText !== old; }",
                arg=before_text,
                timeout=30_000,
            )
            page.wait_for_function(
                "(old) => { const i = document.querySelector('img.hdcid-toc-image'); return i && i.src !== old; }",
                arg=before_src,
                timeout=30_000,
            )
            after_text, after_src = readout.inner_text(), image.get_attribute("src")
            page.locator(".hdcid-toc-explorer").screenshot(path=str(SHOTS / "03_toc-after-slider.png"))
            page.screenshot(path=str(SHOTS / "03_toc.png"), full_page=False)
        finally:
            browser.close()
    assert "keep 33 of 64 dims" in after_text, after_text
    assert after_text != before_text and after_src != before_src
    assert (SHOTS / "03_toc.png").stat().st_size > 10_000
