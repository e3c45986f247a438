"""Measuring Once-for-All's MobileNetV3 space on this machine, and what squeeze-and-excitation and
h-swish cost on each runtime.

1. `pxprof measure --device cpu --space ofa-mbv3-w1.2 --resolution R` for each R: the exports
   (timed apart, cached after the first time), the measurement's wall time per block, and the
   spread of the blocks (IQR / median).
2. One block per stage of the space at 224 px (kernel 5, expansion 4, the stage's repeat layer) in
   four variants, with and without SE and h-swish, timed in the same interleaved rounds on
   onnxruntime (`cpu`) and LiteRT (`cpu-tflite`): the cost of each as a ratio to the plain block.

    python bench/ofa_blocks.py [--resolutions 160 224] [--runtimes cpu cpu-tflite]
                               [--out build/bench/ofa_blocks]
"""

import argparse
import dataclasses
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from profiler.build.blocks import input_shape  # noqa: E402
from profiler.build.export import block_file  # noqa: E402
from profiler.devices.measure import measure_models  # noqa: E402
from profiler.devices.profile import get_device  # noqa: E402
from profiler.devices.runtimes import get_runtime  # noqa: E402
from profiler.devices.schedule import Model  # noqa: E402
from profiler.space.spaces import get_space  # noqa: E402
from profiler.tables.table import LatencyTable  # noqa: E402

from commands import pxprof  # noqa: E402

SPACE = "ofa-mbv3-w1.2"
VARIANTS = {"plain": (False, False), "SE": (True, False), "h-swish": (False, True),
            "SE + h-swish": (True, True)}


def exports(device: str, specs) -> float:
    profile = get_device(device)
    t0 = time.perf_counter()
    for spec in specs:
        block_file(spec, get_runtime(profile.runtime), profile.batch)
    return time.perf_counter() - t0


def table_at(resolution: int, out: Path) -> None:
    space = get_space(SPACE, resolution)
    export_s = exports("cpu", space.blocks())
    t0 = time.perf_counter()
    pxprof("measure", "--device", "cpu", "--space", SPACE, "--resolution", resolution,
           "-o", out / f"cpu-{resolution}.csv")
    wall = time.perf_counter() - t0
    df = LatencyTable.load(out / f"cpu-{resolution}.csv").df
    print(f"| {resolution} px | {len(df)} | {export_s:.0f} s | {wall:.0f} s | "
          f"{wall / len(df):.2f} s | {df['spread'].median():.1%} | {df['spread'].max():.1%} | "
          f"{df['latency_ms'].sum():.2f} ms |", flush=True)


def se_and_hswish(devices: list[str]) -> None:
    space = get_space(SPACE)
    repeats = [layer.candidates["k5_e4"] for layer in space.layers() if layer.index % 4 == 1]
    blocks = {(i, name): dataclasses.replace(spec, se=se, hs=hs)
              for i, spec in enumerate(repeats) for name, (se, hs) in VARIANTS.items()}
    print(f"\n| stage block | runtime | {' | '.join(VARIANTS)} | SE cost | h-swish cost |")
    print("|---|---|" + "---|" * (len(VARIANTS) + 2))
    costs = {}
    for device in devices:
        profile = get_device(device)
        runtime = get_runtime(profile.runtime)
        exports(device, blocks.values())
        models = {f"{i}/{name}": Model(block_file(spec, runtime, profile.batch),
                                       input_shape(spec, profile.batch))
                  for (i, name), spec in blocks.items()}
        measured = measure_models(profile, models, progress=False)
        for i, spec in enumerate(repeats):
            ms = {name: measured.ms[f"{i}/{name}"] for name in VARIANTS}
            se, hs = ms["SE"] / ms["plain"], ms["h-swish"] / ms["plain"]
            costs.setdefault(device, []).append((se, hs))
            print(f"| {spec.in_h}x{spec.in_w}x{spec.in_c} mid {spec.mid} | {device} | "
                  + " | ".join(f"{ms[name]:.4g} ms" for name in VARIANTS)
                  + f" | x{se:.2f} | x{hs:.2f} |", flush=True)
    for device, pairs in costs.items():
        print(f"{device}: SE x{statistics.mean(p[0] for p in pairs):.2f}, h-swish "
              f"x{statistics.mean(p[1] for p in pairs):.2f} on average over {len(pairs)} blocks")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--resolutions", type=int, nargs="+", default=[160, 224])
    ap.add_argument("--runtimes", nargs="+", default=["cpu", "cpu-tflite"],
                    help="device profiles whose runtimes are compared")
    ap.add_argument("--out", type=Path, default=Path("build/bench/ofa_blocks"))
    args = ap.parse_args()
    out = args.out / time.strftime("%Y%m%d-%H%M%S")
    out.mkdir(parents=True)
    print("| resolution | blocks | exports | measure wall | per block | median spread | max spread "
          "| sum of blocks |\n|---|---|---|---|---|---|---|---|")
    for r in args.resolutions:
        table_at(r, out)
    se_and_hswish(args.runtimes)


if __name__ == "__main__":
    main()
