"""Atomic writes: a file appears whole under its name or not at all."""

from __future__ import annotations

import contextlib
import json
import os
import re
import tempfile
from pathlib import Path

from .errors import UserError


PART = ".part"


@contextlib.contextmanager
def atomic_path(path: Path):
    """Yield a temporary path beside `path`; on success it replaces `path`, on error it vanishes."""
    path = Path(path)
    try:
        # The writer's pid is in the name, so a file left by a killed writer can be told from one
        # being written (remove_orphans).
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}-",
                                   suffix=PART + path.suffix,
                                   dir=path.parent if str(path.parent) else ".")
    except OSError as exc:
        raise UserError(f"cannot write {path}: {exc.strerror}") from None
    os.close(fd)
    # mkstemp makes the file private; give it the permissions a plain open() would.
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_text(path: Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_json(path: Path, data) -> None:
    write_text(path, json.dumps(data, indent=1) + "\n")


def check_writable(path: Path) -> Path:
    """Fail early, before any work, when `path` cannot be written."""
    path = Path(path)
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise UserError(f"cannot write {path}: directory {parent} does not exist")
    if path.is_dir():
        raise UserError(f"cannot write {path}: it is a directory")
    if not os.access(parent, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise UserError(f"cannot write {path}: permission denied")
    return path


def remove_orphans(directory: Path) -> None:
    """Remove the temporary files in `directory` whose writer is dead (killed mid-write: a
    SIGKILL runs no clean-up)."""
    for tmp in Path(directory).glob(f".*{PART}*"):
        m = re.fullmatch(rf"\..+\.(\d+)-\w+{re.escape(PART)}.*", tmp.name)
        if m and not _alive(int(m[1])):
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True
