"""Architecture files: {"space": NAME, "choices": [one op name per searchable layer], ...}.

NAME is a preset or a space file path (relative paths are taken from the architecture file's folder).
Other fields (a search's predicted latency, say) are kept but not needed.
"""

from __future__ import annotations

import json
from pathlib import Path

from .errors import UserError
from .files import write_json
from .space import SearchSpace, get_space


def load_arch(path: Path, space: SearchSpace | None = None) -> tuple[SearchSpace, list[str]]:
    """The space and checked choices of an architecture file; `space` overrides its recorded one."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except OSError as exc:
        raise UserError(f"cannot read architecture {path}: {exc.strerror}") from None
    except ValueError as exc:
        raise UserError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(data, dict) or "choices" not in data or "space" not in data:
        raise UserError(f'{path}: an architecture is {{"space": NAME, "choices": [...]}}')
    if space is None:
        name = str(data["space"])
        local = path.parent / name
        space = get_space(str(local) if local.suffix in (".yaml", ".yml", ".json") and local.exists()
                          else name)
    try:
        return space, space.check_choices(data["choices"])
    except UserError as exc:
        raise UserError(f"{path}: {exc}") from None


def save_arch(path: Path, space_name: str, choices: list[str], **extra) -> None:
    write_json(path, {"space": space_name, "choices": list(choices), **extra})
