"""Runtimes side by side, and what ssh costs.

1. The table of a space on this machine with onnxruntime (`cpu`) and with LiteRT (`cpu-tflite`):
   latencies side by side, their Spearman rank correlation and the ratio of their sums.
2. The wall time of `pxprof measure` for a full table over ssh (an OpenSSH server on 127.0.0.1,
   started here with its own keys; the board is a fresh work directory, so every push is counted)
   against the same profile measured locally. Runs alternate local, ssh, ssh, local, … so slow
   drift of the machine lands on both alike. Aim: ssh adds at most 10 %.

Exports are made once beforehand and are in no wall time.

    python bench/runtimes.py [--space proxyless-mobile] [--pairs 1] [--skip-ssh]
"""

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml
from scipy.stats import spearmanr

from profiler.build.export import block_file
from profiler.devices.profile import get_device
from profiler.devices.runtimes import get_runtime
from profiler.space.spaces import get_space
from profiler.tables.table import LatencyTable

from commands import BIN

sys.path.insert(0, str(Path(__file__).parents[1] / "tests"))
from sshd import start_sshd  # noqa: E402  (the tests' loopback OpenSSH server)

METHOD = ("threads", "warmup_s", "rounds", "runs_per_round", "min_sample_ms", "max_spread",
          "retries")


def measure(device: str, space: str, out: Path) -> tuple[float, LatencyTable]:
    t0 = time.perf_counter()
    subprocess.run([str(BIN / "pxprof"), "measure", "--device", device, "--space", space, "-o", str(out)],
                   check=True, stderr=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t0, LatencyTable.load(out)


def export_all(device: str, space) -> None:
    profile = get_device(device)
    t0 = time.perf_counter()
    for spec in space.blocks():
        block_file(spec, get_runtime(profile.runtime), profile.batch)
    print(f"exports for {device}: {time.perf_counter() - t0:.0f} s (cached after the first time)")


def side_by_side(a: LatencyTable, b: LatencyTable, names=("onnxruntime", "litert")) -> None:
    la = a.df.set_index("key")["latency_ms"]
    lb = b.df.set_index("key")["latency_ms"].reindex(la.index)
    rho = spearmanr(la, lb).statistic
    print(f"{'block':86} {names[0]:>12} {names[1]:>12}")
    for key in la.index:
        print(f"{key:86} {la[key]:12.4f} {lb[key]:12.4f}")
    print(f"{len(la)} blocks: Spearman rank correlation {rho:.3f}; sum {la.sum():.3f} vs "
          f"{lb.sum():.3f} ms ({names[1]} / {names[0]} = {lb.sum() / la.sum():.3f})")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--space", default="proxyless-mobile")
    ap.add_argument("--pairs", type=int, default=1, help="local/ssh pairs, run as ABBA")
    ap.add_argument("--skip-ssh", action="store_true")
    args = ap.parse_args()
    space = get_space(args.space)
    for device in ("cpu", "cpu-tflite"):
        export_all(device, space)

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        wall_ort, ort = measure("cpu", args.space, tmp / "ort.csv")
        wall_tfl, tfl = measure("cpu-tflite", args.space, tmp / "tflite.csv")
        print(f"\nonnxruntime table: {wall_ort:.0f} s; LiteRT table: {wall_tfl:.0f} s")
        side_by_side(ort, tfl)
        if args.skip_ssh:
            return

        server = start_sshd(tmp / "sshd")
        try:
            local = get_device("cpu")
            walls = {"local": [], "ssh": []}
            order = [w for _ in range(args.pairs) for w in ("local", "ssh", "ssh", "local")]
            for i, where in enumerate(order):
                device = "cpu"
                if where == "ssh":
                    device = str(tmp / f"board{i}.yaml")  # a fresh workdir: pushes included
                    Path(device).write_text(yaml.safe_dump(
                        {"transport": "ssh", "runtime": "onnxruntime", "host": server.host,
                         "port": server.port, "user": server.user,
                         "identity_file": str(server.identity_file),
                         "known_hosts": str(server.known_hosts), "python": sys.executable,
                         "workdir": str(tmp / f"workdir{i}")}
                        | {m: getattr(local, m) for m in METHOD}))
                wall, _ = measure(device, args.space, tmp / f"{where}{i}.csv")
                walls[where].append(wall)
                print(f"run {i}: {where:5} {wall:6.1f} s")
        finally:
            server.stop()
        lo, ss = sum(walls["local"]) / len(walls["local"]), sum(walls["ssh"]) / len(walls["ssh"])
        print(f"full {args.space} table: local {lo:.1f} s, ssh (loopback) {ss:.1f} s: "
              f"ssh adds {ss / lo - 1:+.1%} (aim: at most +10 %)")


if __name__ == "__main__":
    main()
