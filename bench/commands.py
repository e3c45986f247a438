"""Running the tools from a benchmark as a user runs them."""

import os
import subprocess
import sys
from pathlib import Path

BIN = Path(sys.executable).parent


def pxprof(*args, cache: Path | None = None) -> str:
    """pxprof's output; the benchmark stops with the command's error if it fails. `cache`: the
    export cache it uses (default: the user's)."""
    env = dict(os.environ, PXNAS_CACHE=str(cache)) if cache else None
    proc = subprocess.run([str(BIN / "pxprof"), *map(str, args)], capture_output=True, text=True,
                          env=env)
    if proc.returncode:
        sys.exit(f"pxprof {args[0]} failed: {proc.stderr.strip().splitlines()[-1:]}")
    return proc.stdout
