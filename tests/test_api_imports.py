"""An API process loads only what serving needs.

The MinHash library (numpy, scipy: tens of MiB) waits for the first fingerprint.
"""

from __future__ import annotations

import subprocess
import sys


def test_importing_the_app_leaves_numpy_and_datasketch_unloaded() -> None:
    probe = (
        "import sys, api.app; print(sorted({'datasketch', 'numpy', 'scipy'} & set(sys.modules)))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=120
    )
    assert result.stdout.strip() == "[]"
