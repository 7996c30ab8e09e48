"""The report in a real browser: headless Chromium draws its first screen, answers and figure included.

Skipped where no Chromium or Chrome binary is on the PATH (CI machines): `apt-get install chromium`.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import toy_task  # noqa: F401  (registers toy-v1)

from structure_bench.planning import plan
from structure_bench.report import write_report
from structure_bench.runner import run

pytest.importorskip("matplotlib")

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")
WINDOW = (1400, 1000)
ALIGNED_GREEN = np.array([0x2C, 0xA0, 0x2C]) / 255  # tab:green, the class bars' "aligned" colour


def browser() -> str | None:
    """The first Chromium or Chrome binary on the PATH, or None."""
    return next((path for path in map(shutil.which, BROWSERS) if path is not None), None)


def screenshot(binary: str, page: Path, out: Path) -> np.ndarray:
    """The first screen of ``page`` in a WINDOW-sized headless browser: [height, width, 3] RGB in [0, 1]."""
    from matplotlib.image import imread

    command = [binary, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
               f"--user-data-dir={out.parent / 'profile'}", f"--screenshot={out}", f"--window-size={WINDOW[0]},{WINDOW[1]}",
               page.resolve().as_uri()]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert out.exists(), f"no screenshot (exit status {done.returncode}): {done.stderr[-2000:]}"
    return imread(out)[..., :3]


def test_first_screen_shows_the_answers_and_their_figure(tmp_path: Path) -> None:
    binary = browser()
    if binary is None:
        pytest.skip(f"no Chromium or Chrome binary on the PATH (looked for {', '.join(BROWSERS)}): apt-get install chromium")
    # The oracle's latents are the true directions: its bar in the answer's class-bars figure is all "aligned".
    run(plan(["toy-v1"], ["oracle", "toy_task:LeastSquares"], seeds=[0]), tmp_path, progress=False, save_codes=True)
    pixels = screenshot(binary, write_report(tmp_path), tmp_path / "first_screen.png")
    assert pixels.shape[:2] == (WINDOW[1], WINDOW[0])
    assert pixels.std() > 0.05, "the screenshot is blank"
    green = np.abs(pixels - ALIGNED_GREEN).max(axis=2) < 0.04
    assert green.sum() > 2000, "the answer's figure (an embedded WebP) was not drawn on the first screen"
