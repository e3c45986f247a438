"""The output policy of every command that writes, in one place.

- An output that is one of the command's inputs is refused (it would be lost).
- An existing output is never replaced unless the user says so: `--resume` completes it where
  that means something (a table being measured, a search), `--force` replaces it.
- A table and its raw samples (T.samples.json) go together: replacing one replaces the other.
- One writer at a time: while a command writes an output it holds a lock beside it; a second
  command on the same output refuses, naming the first. The lock is the kernel's (flock): it is
  released when its process ends, however it ends, even by SIGKILL.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from pathlib import Path

from .errors import UserError
from .files import check_writable


def _same(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve() or (a.exists() and b.exists() and a.samefile(b))
    except OSError:
        return False


def claim(path: Path, inputs=(), force: bool = False, resume: bool | None = None,
          directory: bool = False, companions=()) -> Path:
    """Check, before any work, that `path` may be written under the policy above; returns it.
    `companions` are files that belong to it (a table's samples): one of them existing makes
    the output taken, as the output itself does. `resume` is None for a command that cannot
    complete an output (it has no --resume)."""
    resumable = resume is not None
    path = Path(path)
    for given in inputs:
        if given is not None and _same(path, Path(given)):
            raise UserError(f"{path} is also an input of this command; choose another output")
    if directory:
        if path.exists() and not path.is_dir():
            raise UserError(f"cannot write {path}: it is a file, not a directory")
        parent = path.parent if str(path.parent) else Path(".")
        if not parent.is_dir():
            raise UserError(f"cannot write {path}: directory {parent} does not exist")
        target = path if path.exists() else parent
        if not os.access(target, os.W_OK | os.X_OK):
            raise UserError(f"cannot write {path}: permission denied")
        taken = path.exists() and any(path.iterdir())
    else:
        check_writable(path)
        taken = path.exists() or any(Path(c).exists() for c in companions)
    if taken and not (force or resume):
        again = "--resume to complete it, " if resumable else ""
        raise UserError(f"{path} exists; pass {again}--force to replace it, or choose another "
                        f"output")
    return path


@contextlib.contextmanager
def claimed(path: Path, inputs=(), prog: str = "pxnas", *, force: bool = False,
            resume: bool | None = None, directory: bool = False, companions=(), beside=None):
    """What every command that writes does: claim `path` before any work (and `beside`, a second
    file the command writes, if any), then hold the lock of `path` while the work runs and
    writes it. Yields `path`."""
    inputs = [given for given in inputs if given is not None]
    path = claim(path, [*inputs, beside], force, resume, directory, companions)
    if beside is not None:
        claim(beside, [*inputs, path], force)
    with writing(path, prog):
        yield path


def remove_stale(files) -> None:
    """Remove files that described an output now replaced (a table's old samples)."""
    for path in files:
        with contextlib.suppress(FileNotFoundError):
            Path(path).unlink()


def lock_path(path: Path) -> Path:
    path = Path(path)
    return path.parent / f".{path.name}.lock"


@contextlib.contextmanager
def writing(path: Path, prog: str = "pxnas", wait: bool = False):
    """Hold the lock of output `path` while the block runs; refuse if another process holds it,
    or with `wait`, wait until it is done (a shared cache: its writer's file is then there)."""
    lock = lock_path(path)
    while True:
        try:
            fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise UserError(f"cannot write {path}: {exc.strerror}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            holder = os.read(fd, 200).decode(errors="replace").strip() or "another process"
            os.close(fd)
            raise UserError(f"{path} is being written by {holder}; wait for it to finish, or "
                            f"choose another output") from None
        # The lock file may have been removed by its last holder between our open and flock:
        # then the lock we hold is on a file nobody else will see; take the new one.
        try:
            current = os.stat(lock)
        except FileNotFoundError:
            os.close(fd)
            continue
        if os.fstat(fd).st_ino == current.st_ino:
            break
        os.close(fd)
    try:
        os.ftruncate(fd, 0)
        os.write(fd, f"{prog} (pid {os.getpid()}, since {time.strftime('%H:%M:%S')})".encode())
        yield
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(lock)
        os.close(fd)
