"""Running the tools from a benchmark as a user runs them."""

import subprocess
import sys
from pathlib import Path

BIN = Path(sys.executable).parent


def pxprof(*args) -> str:
    """pxprof's output; the benchmark stops with the command's error if it fails."""
    proc = subprocess.run([str(BIN / "pxprof"), *map(str, args)], capture_output=True, text=True)
    if proc.returncode:
        sys.exit(f"pxprof {args[0]} failed: {proc.stderr.strip().splitlines()[-1:]}")
    return proc.stdout
