"""Registers `faulty://` in `gart` child processes started with this directory on PYTHONPATH."""

import sys
from pathlib import Path

sys.path.append(str(Path(__file__).resolve().parents[1]))
import faultfs  # noqa: E402, F401  (importing registers the protocol)
