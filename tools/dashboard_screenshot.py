"""Look at a study the way a user does: optuna-dashboard in headless Chromium, with screenshots.

    python tools/dashboard_screenshot.py sqlite:///studies/demo/optuna.db --out shots/

Starts optuna-dashboard on a free 127.0.0.1 port for the storage URL, opens the study's
page and one trial's page in headless Chromium (Debian's ``chromium``; ``make sysdeps``
installs it), and writes ``study.png`` / ``trial.png`` and the text each page shows after
its JavaScript ran (``study.txt`` / ``trial.txt``, from ``--dump-dom``). It then checks
what a user should see: the objectives named ``val_top1`` and ``gflops`` (not "Objective
0"), and the trial's learning curve (its note). Exit 0 when both show, 1 when not (one
line says what is missing), 2 on bad input.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path

CHROMIUM_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-dev-shm-usage", "--hide-scrollbars", "--window-size=1400,1000",
)
NAMES = ("val_top1", "gflops")
CURVE_MARK = "val_top1 per epoch"  # the heading of search.dashboard.curve_note


class Unusable(Exception):
    """Bad input: no browser, no dashboard, no such study or trial."""


def find_chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        if path := shutil.which(name):
            return path
    raise Unusable("no chromium on PATH: `make sysdeps` installs Debian's chromium")


def _get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())


@contextlib.contextmanager
def dashboard(storage: str, timeout: float = 60) -> Iterator[str]:
    """optuna-dashboard (its own command, as a user starts it) on a free port; yields its base URL."""
    import socket

    exe = shutil.which("optuna-dashboard", path=str(Path(sys.executable).parent)) or shutil.which("optuna-dashboard")
    if exe is None:
        raise Unusable("no optuna-dashboard command (pip install optuna-dashboard)")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([exe, storage, "--host", "127.0.0.1", "--port", str(port), "--quiet"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                raise Unusable("optuna-dashboard exited: " + (proc.stdout.read().strip().splitlines() or ["?"])[-1])
            try:
                _get_json(base + "/api/studies")
                break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                if time.monotonic() > deadline:
                    raise Unusable(f"optuna-dashboard did not answer on {base} within {timeout:.0f} s") from None
                time.sleep(0.2)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class _Text(HTMLParser):
    """The visible text of an HTML document: every text node outside script/style, space-joined."""

    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag, attrs):
        if tag in ("script", "style"):
            self._skip += 1

    def handle_endtag(self, tag):
        if tag in ("script", "style") and self._skip:
            self._skip -= 1

    def handle_data(self, data):
        if not self._skip and data.strip():
            self.parts.append(data.strip())


def page_text(dom: str) -> str:
    parser = _Text()
    parser.feed(dom)
    return " ".join(parser.parts)


def render(browser: str, url: str, screenshot: Path, budget_ms: int = 10_000) -> str:
    """Open ``url`` twice in headless Chromium: a screenshot, then the DOM after JS ran (returned as text)."""
    with tempfile.TemporaryDirectory(prefix="fgsearch-chromium-") as profile:
        base = [browser, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", f"--virtual-time-budget={budget_ms}"]
        subprocess.run([*base, f"--screenshot={screenshot}", url], capture_output=True, timeout=120, check=False)
        done = subprocess.run([*base, "--dump-dom", url], capture_output=True, text=True, timeout=120, check=False)
    if done.returncode != 0 or not done.stdout.strip():
        raise Unusable(f"chromium could not render {url}: " + (done.stderr.strip().splitlines() or ["?"])[-1])
    return page_text(done.stdout)


def capture(storage: str, out: Path, name: str | None = None, trial: int | None = None) -> dict[str, str]:
    """Screenshots and rendered text of the study's page and one trial's page, written under ``out``.

    ``trial`` defaults to the first trial with a per-epoch curve. Returns ``{"study": text, "trial": text}``.
    """
    browser = find_chromium()
    out.mkdir(parents=True, exist_ok=True)
    with dashboard(storage) as base:
        summaries = _get_json(base + "/api/studies")["study_summaries"]
        if name is None and len(summaries) == 1:
            name = summaries[0]["study_name"]
        found = [s for s in summaries if s["study_name"] == name]
        if not found:
            have = ", ".join(s["study_name"] for s in summaries) or "none"
            raise Unusable(f"no study {name!r} in {storage} (studies: {have}); pick one with --name")
        study_id = found[0]["study_id"]
        trials = _get_json(f"{base}/api/studies/{study_id}")["trials"]
        if trial is None:
            trial = next((t["number"] for t in trials if any(a["key"] == "curve" for a in t["user_attrs"])), 0)
        if trial not in {t["number"] for t in trials}:
            raise Unusable(f"study {name!r} has no trial {trial}")
        texts = {
            "study": render(browser, f"{base}/dashboard/studies/{study_id}", out / "study.png"),
            "trial": render(browser, f"{base}/dashboard/studies/{study_id}/trials?numbers={trial}", out / "trial.png"),
        }
    for page, text in texts.items():
        (out / f"{page}.txt").write_text(text + "\n")
    return texts


def missing(texts: dict[str, str]) -> list[str]:
    """What a user should see and does not: named objectives on the study page, the curve on the trial page."""
    gaps = [f"objective name {n!r}" for n in NAMES if n not in texts["study"]]
    if "Objective 0" in texts["study"]:
        gaps.append("unnamed objectives ('Objective 0')")
    if CURVE_MARK not in texts["trial"]:
        gaps.append("the trial's learning curve (note)")
    return gaps


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("storage", help="the study's storage URL, as optuna-dashboard takes it")
    parser.add_argument("--name", help="study name (default: the only one in the storage)")
    parser.add_argument("--trial", type=int, help="trial number (default: the first with a curve)")
    parser.add_argument("--out", type=Path, default=Path("dashboard-shots"), help="folder for the PNGs and texts")
    args = parser.parse_args(argv)
    try:
        texts = capture(args.storage, args.out, args.name, args.trial)
    except Unusable as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {args.out / 'study.png'} and {args.out / 'trial.png'}")
    if gaps := missing(texts):
        print("the dashboard does not show: " + "; ".join(gaps), file=sys.stderr)
        return 1
    print("the dashboard shows the objectives val_top1 and gflops and the trial's learning curve")
    return 0


if __name__ == "__main__":
    sys.exit(main())
