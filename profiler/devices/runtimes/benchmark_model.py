"""benchmark_model: TFLite's own benchmark tool, run on the device once per sample.

The tool is the user's build for the phone's ABI (`--benchmark-binary`), pushed content-addressed
(so again only when it changed). Each sample is one invocation, pinned with `taskset` to the
profile's CPUs: `--num_threads`, a warm-up, then `--num_runs` calibrated to at least
`min_sample_ms`; the sample is the tool's own "Inference (avg)". Nothing is rescaled: the table
holds the median of what the phone's tool reported.
"""

from __future__ import annotations

import math
from pathlib import Path

from profiler.devices.client import Warmup
from profiler.devices.transports.base import file_digest
from profiler.errors import DeviceError
from profiler.tables.fingerprint import DeviceFacts
from .base import Runtime
from .benchmark_output import parse_output

# One shell script with fixed text: what the phone says about itself, one fact a line.
_FACTS = {
    "model": "getprop ro.product.model",
    "android": "getprop ro.build.version.release",
    "abi": "getprop ro.product.cpu.abi",
    "governor": "cat /sys/devices/system/cpu/cpu{cpu}/cpufreq/scaling_governor",
    "freq_khz": "cat /sys/devices/system/cpu/cpu{cpu}/cpufreq/scaling_cur_freq",
    "max_freq_khz": "cat /sys/devices/system/cpu/cpu{cpu}/cpufreq/cpuinfo_max_freq",
    "temp": "cat /sys/class/thermal/thermal_zone0/temp",
}


def cpu_mask(cpus: str) -> str:
    """taskset's hex mask for a CPU list such as 4-7 or 0,2."""
    mask = 0
    for part in cpus.split(","):
        lo, _, hi = part.partition("-")
        for cpu in range(int(lo), int(hi or lo) + 1):
            mask |= 1 << cpu
    return format(mask, "x")


class BenchmarkModelClient:
    def __init__(self, transport, profile, runtime):
        self.transport, self.profile = transport, profile
        binary = Path(profile.benchmark_binary) if profile.benchmark_binary else None
        if binary is None or not binary.is_file():
            raise DeviceError(f"device {profile.name} runs TFLite's benchmark_model: give "
                              f"--benchmark-binary PATH, the tool built for the phone's ABI"
                              + (f" ({binary} is not a file)" if binary else ""))
        self.binary = transport.push(binary, mode="755")
        self.graphs: dict[str, str] = {}
        self.facts = self._facts(binary)

    def _facts(self, binary: Path) -> DeviceFacts:
        cpu = self.profile.cpus.split(",")[0].split("-")[0] if self.profile.cpus else "0"
        script = "; ".join(f"echo {name}=$({cmd.format(cpu=cpu)} 2>/dev/null)"
                           for name, cmd in _FACTS.items())
        out = self.transport.run(["sh", "-c", script], timeout=self.profile.timeout_s).stdout
        got = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
        self._check_tool(got.get("abi", ""))
        temp = got.get("temp", "")
        return DeviceFacts(
            host=self.transport.serial, host_cpu=f"{got.get('model', '?')} ({got.get('abi', '?')})",
            runtime_version=f"benchmark_model {file_digest(binary)[:12]}",
            cpu_affinity=self.profile.cpus, governor=got.get("governor", ""),
            temperature_c=round(int(temp) / 1000, 1) if temp.lstrip("-").isdigit() else None,
            facts={k: got.get(k, "") for k in ("model", "android", "abi", "freq_khz",
                                                "max_freq_khz")})

    def _check_tool(self, abi: str):
        """The pushed file must be TFLite's benchmark_model and run on this phone."""
        missing = f"{self.profile.workdir}/none.tflite"
        proc = self.transport.run([self.binary, f"--graph={missing}", "--num_runs=1"],
                                  timeout=self.profile.timeout_s, check=False)
        said = proc.stdout + proc.stderr
        if "STARTING!" not in said:
            last = (said.strip().splitlines() or [f"exit {proc.returncode}"])[-1]
            raise DeviceError(f"{self.profile.benchmark_binary} does not run as TFLite's "
                              f"benchmark_model on {self.transport.describe()} (ABI {abi or '?'}): "
                              f"{last}")

    def _invoke(self, name: str, warmup_s: float, runs: int):
        argv = [self.binary, f"--graph={self.graphs[name]}",
                f"--num_threads={self.profile.threads}", "--warmup_runs=1",
                f"--warmup_min_secs={warmup_s:g}", f"--num_runs={runs}", "--min_secs=0",
                f"--max_secs={self.profile.timeout_s:g}"]
        if self.profile.cpus:
            argv = ["taskset", cpu_mask(self.profile.cpus), *argv]
        proc = self.transport.run(argv, timeout=self.profile.timeout_s + warmup_s, check=False)
        try:
            result = parse_output(proc.stdout + "\n" + proc.stderr)
        except ValueError as exc:
            raise DeviceError(f"{self.transport.describe()}: benchmark_model on {name}: {exc}") \
                from None
        if proc.returncode:
            raise DeviceError(f"{self.transport.describe()}: benchmark_model on {name} exited "
                              f"{proc.returncode}")
        return result

    def load(self, name: str, path: Path, shape) -> None:
        self.graphs[name] = self.transport.push(path)

    def warmup(self, name: str, max_s: float, min_sample_ms: float):
        first = self._invoke(name, max_s, 3)
        inner = max(1, math.ceil(min_sample_ms / first.avg_ms))
        return Warmup(first.warmup_count or 1, inner)

    def sample(self, name: str, inner: int, count: int) -> list[float]:
        # One invocation is one sample; each warms up briefly, its process being new.
        warm = min(self.profile.warmup_s, 0.5)
        return [self._invoke(name, warm, inner).avg_ms for _ in range(count)]

    def paired(self, name: str, inner: int, count: int, ref: str, ref_inner: int):
        """As PxbenchClient.paired: invocations of `ref` and `name` in turn."""
        warm = min(self.profile.warmup_s, 0.5)
        pairs = [(self._invoke(ref, warm, ref_inner).avg_ms, self._invoke(name, warm, inner).avg_ms)
                 for _ in range(count)]
        return [t for _, t in pairs], [r for r, _ in pairs]

    def close(self) -> None:
        pass


RUNTIME = Runtime(name="benchmark_model", format="tflite", channels_last=True,
                  package="TFLite's benchmark_model (--benchmark-binary)",
                  client=BenchmarkModelClient)
