"""The console scripts, run in a process forked from an interpreter that has already imported pxnas
and its libraries (multiprocessing's fork server).

Each call is a process of its own, as `pxprof ...` typed in a shell is: the same entry point, its
own working directory, environment, stdout, stderr and exit status; only the imports are done once.
Most CLI tests check a refusal, which happens in milliseconds once torch is imported and in seconds
when every call imports it again. The tests of a command's whole run, and of the scripts
themselves (start-up, signals), use the installed scripts (conftest.run).
"""

from __future__ import annotations

import multiprocessing
import os
import subprocess
import sys
import tempfile
from pathlib import Path

# What a command imports beyond --help: imported once, in the fork server (torch._dynamo: by
# every torch optimizer, in a search).
PRELOAD = ["profiler.cli", "search.cli", "torch", "torch._dynamo", "pandas", "sklearn.ensemble",
           "predictors", "profiler.devices.measure", "search.run", "search.data", "onnx"]

_context = None


def _fork_server():
    global _context
    if _context is None:
        _context = multiprocessing.get_context("forkserver")
        _context.set_forkserver_preload(PRELOAD)
    return _context


def _main(prog: str, argv: list[str], cwd: str, env: dict, out: str, err: str) -> None:
    os.chdir(cwd)
    os.environ.clear()
    os.environ.update(env)
    for fd, path in ((1, out), (2, err)):
        target = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.dup2(target, fd)
        os.close(target)
    if env.get("OMP_NUM_THREADS"):
        # torch read it when the server imported it, from the server's environment: this run's
        # is applied here.
        import torch
        torch.set_num_threads(int(env["OMP_NUM_THREADS"]))
    sys.argv = [prog, *argv]
    if prog == "python":  # python -c CODE
        sys.argv = argv
        exec(compile(argv[1], "<string>", "exec"), {"__name__": "__main__"})
        return
    if prog == "pxprof":
        from profiler.cli import main
    else:
        from search.cli import main
    main()  # its SystemExit is the process's exit status


class Forked:
    """A command running in a process forked from the server (start_forked): `pid`, and `wait()`
    for the finished process."""

    def __init__(self, prog: str, argv: list[str], cwd, env):
        self.args = [prog, *argv]
        self._tmp = tempfile.TemporaryDirectory()
        self._out, self._err = Path(self._tmp.name, "out"), Path(self._tmp.name, "err")
        self.process = _fork_server().Process(target=_main, args=(
            prog, argv, str(cwd), dict(env or os.environ), str(self._out), str(self._err)))
        self.process.start()

    @property
    def pid(self) -> int:
        return self.process.pid

    def poll(self) -> int | None:
        """The exit status, or None while it runs."""
        return self.process.exitcode

    def kill(self) -> None:
        if self.process.exitcode is None:
            self.process.kill()

    def wait(self, timeout: float = 300) -> subprocess.CompletedProcess:
        """The finished process, as subprocess.run gives it (exit status 255: its status was lost,
        see run_forked)."""
        try:
            self.process.join(timeout)
            if self.process.exitcode is None:
                self.process.kill()
                self.process.join()
                raise subprocess.TimeoutExpired(self.args, timeout)
            read = lambda p: p.read_text() if p.exists() else ""  # noqa: E731
            return subprocess.CompletedProcess(self.args, self.process.exitcode, read(self._out),
                                               read(self._err))
        finally:
            self._tmp.cleanup()


def start_forked(prog: str, *args, cwd, env=None) -> Forked:
    """Start console script `prog` (or "python", with args "-c", CODE) with `args` in `cwd`."""
    return Forked(prog, [str(a) for a in args], cwd, env)


def run_forked(prog: str, *args, cwd, env=None, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run console script `prog` (or "python", with args "-c", CODE) with `args` in `cwd`; the
    finished process, as subprocess.run gives it (text stdout and stderr)."""
    done = start_forked(prog, *args, cwd=cwd, env=env).wait(timeout)
    if done.returncode == 255:
        # The fork server reports 255 when it lost the child's status (it was killed, say by
        # a test stopping a process group): the command's own status is unknown, so it is
        # run again as the installed script, the slow and sure way.
        argv = done.args[1:]
        exe = sys.executable if prog == "python" else str(Path(sys.executable).parent / prog)
        return subprocess.run([exe, *argv], cwd=cwd, env=dict(env or os.environ),
                              capture_output=True, text=True, timeout=timeout)
    return done
