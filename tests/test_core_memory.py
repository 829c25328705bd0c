"""A 60-frame 4K loop stays under 4 GiB of peak memory (slow: about a minute on 2 cores)."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_4k_loop_peak_memory_under_4_gib():
    out = subprocess.run(
        [sys.executable, str(ROOT / "benchmark.py"), "--_child-4k", "--device", "cpu"],
        check=True, capture_output=True, text=True, timeout=1800,
    ).stdout
    rss = float(re.search(r"peak RSS (\d+) MiB", out).group(1))
    assert rss < 4096, out
