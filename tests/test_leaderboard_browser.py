"""Opt-in (--runbrowser): load the leaderboard page in Debian's headless chromium and look at it."""

import shutil
import subprocess

import numpy as np
import pytest
from PIL import Image
from test_leaderboard_gate import runs  # noqa: F401  (module fixture: real task runs on mockllm)

from charbench.leaderboard.build import build_leaderboard

pytestmark = pytest.mark.browser

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def test_leaderboard_page_renders_table_and_plots(runs, tmp_path):  # noqa: F811
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.fail("chromium not found: apt-get install chromium (Debian) to run the browser test")
    out = build_leaderboard(runs / "candidate", tmp_path / "site")
    url = out.html_path.resolve().as_uri()
    profile = ["--user-data-dir=" + str(tmp_path / "profile")]
    dom = subprocess.run([chromium, *CHROMIUM_FLAGS, *profile, "--dump-dom", url], capture_output=True, text=True, timeout=120, check=False).stdout
    assert "break-character F1" in dom and "<img" in dom
    assert 'class="area">robustness' in dom and "Against the baseline" in dom and dom.count("<img") == len(
        list((tmp_path / "site" / "plots").glob("*.png")))  # every headline plot drawn once
    shot = tmp_path / "page.png"
    subprocess.run([chromium, *CHROMIUM_FLAGS, *profile, f"--screenshot={shot}", "--window-size=1200,900", url],
                   capture_output=True, timeout=120, check=True)
    pixels = np.asarray(Image.open(shot).convert("L"), dtype=float)
    assert pixels.std() > 10  # not a blank page: text, table rules and plots are drawn
    assert (pixels < 100).mean() > 0.005  # some dark ink (text and markers)
