#!/usr/bin/env python3
"""pxbench: times model files on the device it runs on. Copied to the device; needs only Python 3,
numpy and one runtime (onnxruntime, LiteRT / tflite_runtime, or torch). Imports nothing of pxnas.

The host drives it with one JSON request per line on stdin; it answers one JSON line per request on
stdout. Timing policy (rounds, interleaving, re-measurement) lives on the host; this script only
loads, warms up, calibrates and times.

    {"op": "hello"}                                 -> runtime, versions, host facts
    {"op": "load", "name": N, "path": P, "shape": [1, 3, 224, 224]}
    {"op": "warmup", "name": N, "max_s": 1.0, "min_sample_ms": 2.0}
                                                    -> {"warmup": runs, "inner": calls per sample,
                                                        "call_ms": a warm call's typical time}
    {"op": "sample", "name": N, "inner": n, "count": c}
                                                    -> {"times_ms": [c per-call times]}
    {"op": "sample", ..., "ref": R, "ref_inner": m} -> {"times_ms": [...], "ref_ms": [...]}:
        each sample of N right after one of the reference model R, so that both see the
        device at one speed
    {"op": "unload", "name": N}

Every answer has "ok"; a failed request answers {"ok": false, "error": "..."} and the script goes on.
"""

import argparse
import json
import os
import platform
import socket
import sys
import time

try:
    import numpy as np
except ImportError:  # said as an answer, so the host can tell the user what to install here
    np = None

# Warm-up stops when the median of the last WINDOW calls moves less than STABLE from the window
# before it (caches, allocators and CPU clocks have settled), or when its time is up.
WINDOW = 5
STABLE = 0.05
MIN_WARMUP = 2 * WINDOW


def _read(path):
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return None


def host_facts():
    cpu = None
    for line in (_read("/proc/cpuinfo") or "").splitlines():
        if line.lower().startswith(("model name", "hardware")):
            cpu = line.split(":", 1)[1].strip()
            break
    temp = _read("/sys/class/thermal/thermal_zone0/temp")
    affinity = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    return {
        "host": socket.gethostname(),
        "host_cpu": cpu or platform.processor() or platform.machine(),
        "machine": platform.machine(),
        "python": platform.python_version(),
        "cpu_affinity": ",".join(map(str, affinity)) if affinity else "",
        "governor": _read("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor") or "",
        "temperature_c": round(int(temp) / 1000, 1) if temp and temp.lstrip("-").isdigit() else None,
    }


class OnnxRuntime:
    name = "onnxruntime"
    package = "onnxruntime"

    def __init__(self, threads, device):
        import onnxruntime as ort
        self.ort = ort
        self.version = ort.__version__
        self.threads = threads

    def load(self, path, shape):
        ort = self.ort
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = self.threads
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        sess = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
        # I/O binding keeps input copies and output allocation out of the timed call.
        binding = sess.io_binding()
        x = np.random.default_rng(0).random(shape, dtype=np.float32)
        binding.bind_cpu_input(sess.get_inputs()[0].name, x)
        for out in sess.get_outputs():
            binding.bind_output(out.name, "cpu")
        sess.run_with_iobinding(binding)
        return lambda: sess.run_with_iobinding(binding)


class TFLite:
    name = "tflite"
    package = "ai-edge-litert (or tflite-runtime)"

    def __init__(self, threads, device):
        try:
            from ai_edge_litert import interpreter as tfl
            self.version = "ai-edge-litert " + _dist_version("ai-edge-litert")
        except ImportError:  # devices that only have the older package
            from tflite_runtime import interpreter as tfl
            self.version = "tflite-runtime " + _dist_version("tflite-runtime")
        self.tfl = tfl
        self.threads = threads

    def load(self, path, shape):
        interp = self.tfl.Interpreter(model_path=path, num_threads=self.threads)
        interp.allocate_tensors()
        inp = interp.get_input_details()[0]
        interp.set_tensor(inp["index"], np.random.default_rng(0).random(inp["shape"], dtype=np.float32))
        interp.invoke()
        return interp.invoke


class Torch:
    name = "torch"
    package = "torch"

    def __init__(self, threads, device):
        import torch
        self.torch = torch
        self.version = torch.__version__
        self.device = device
        torch.set_num_threads(threads)
        if device == "cuda":
            if not torch.cuda.is_available():
                raise RuntimeError("torch runtime asked for cuda, but CUDA is not available here")
            self.version += " cuda " + str(torch.version.cuda) + " " + torch.cuda.get_device_name()

    def load(self, path, shape):
        torch = self.torch
        model = torch.jit.load(path, map_location=self.device).eval()
        x = torch.rand(*shape, device=self.device)

        def run():
            with torch.inference_mode():
                model(x)
        run()
        return run

    def timed(self, run, inner):
        if self.device != "cuda":
            return None
        # CUDA launches are asynchronous: time on the GPU with events, not with the host clock.
        cuda = self.torch.cuda
        start, end = cuda.Event(enable_timing=True), cuda.Event(enable_timing=True)
        start.record()
        for _ in range(inner):
            run()
        end.record()
        end.synchronize()
        return start.elapsed_time(end) / inner


RUNTIMES = {r.name: r for r in (OnnxRuntime, TFLite, Torch)}
OPS = {"hello", "load", "unload", "warmup", "sample"}


def _dist_version(dist):
    try:
        from importlib.metadata import version
        return version(dist)
    except Exception:
        return "unknown"


class Bench:
    def __init__(self, runtime, threads, device):
        self.rt = RUNTIMES[runtime](threads, device)
        self.models = {}

    def time_once(self, run, inner):
        timed = getattr(self.rt, "timed", None)
        ms = timed(run, inner) if timed else None
        if ms is not None:
            return ms
        t0 = time.perf_counter()
        for _ in range(inner):
            run()
        return (time.perf_counter() - t0) * 1e3 / inner

    def hello(self, req):
        return dict(host_facts(), runtime=self.rt.name, runtime_version=self.rt.version)

    def load(self, req):
        self.models[req["name"]] = self.rt.load(req["path"], req["shape"])
        return {}

    def unload(self, req):
        self.models.pop(req["name"], None)
        return {}

    def warmup(self, req):
        run = self.models[req["name"]]
        deadline = time.perf_counter() + req["max_s"]
        times = []
        while time.perf_counter() < deadline:
            times.append(self.time_once(run, 1))
            if len(times) >= MIN_WARMUP and len(times) % WINDOW == 0:
                last = np.median(times[-WINDOW:])
                prev = np.median(times[-2 * WINDOW:-WINDOW])
                if abs(last - prev) <= STABLE * prev:
                    break
        typical = float(np.median(times[-WINDOW:]))
        # Calibrated blocks: enough calls per sample that the timer's own cost is negligible.
        inner = max(1, int(np.ceil(req["min_sample_ms"] / typical)))
        return {"warmup": len(times), "inner": inner, "call_ms": typical}

    def sample(self, req):
        run = self.models[req["name"]]
        if "ref" not in req:
            run()  # one untimed call: the block before this one has evicted our caches
            return {"times_ms": [self.time_once(run, req["inner"]) for _ in range(req["count"])]}
        ref = self.models[req["ref"]]
        times, refs = [], []
        for _ in range(req["count"]):
            ref()  # each timed call follows the other model: warm its caches again first
            refs.append(self.time_once(ref, req["ref_inner"]))
            run()
            times.append(self.time_once(run, req["inner"]))
        return {"times_ms": times, "ref_ms": refs}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runtime", required=True, choices=sorted(RUNTIMES))
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--device", default="cpu", help="torch device: cpu or cuda")
    ap.add_argument("--cpus", default="", help="CPU list to pin to, e.g. 0 or 4-7")
    args = ap.parse_args(argv)
    if args.cpus:
        cpus = set()
        for part in args.cpus.split(","):
            lo, _, hi = part.partition("-")
            cpus.update(range(int(lo), int(hi or lo) + 1))
        os.sched_setaffinity(0, cpus)
    try:
        if np is None:
            raise RuntimeError("numpy is not installed here: pip install numpy")
        try:
            bench = Bench(args.runtime, args.threads, args.device)
        except ImportError as exc:
            raise RuntimeError(f"{args.runtime} is not installed here ({exc}): pip install "
                               f"{RUNTIMES[args.runtime].package}") from None
    except Exception as exc:
        print(json.dumps({"ok": False, "error": f"{args.runtime}: {exc}"}), flush=True)
        return 1
    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            req = json.loads(line)
            if req.get("op") not in OPS:
                raise ValueError(f"unknown op; known: {', '.join(sorted(OPS))}")
            answer = dict(getattr(bench, req["op"])(req), ok=True)
        except Exception as exc:
            answer = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
        print(json.dumps(answer), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
