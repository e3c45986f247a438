"""Architecture files: {"space": NAME, "choices": [one op name per searchable layer], ...}.

NAME is a preset or a space file path (relative paths are taken from the architecture file's folder).
Other fields (a search's predicted latency, say) are kept but not needed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .errors import UserError
from .files import write_json
from .records import check_fields, load_record, read_mapping
from .space import SearchSpace, get_space


@dataclass(frozen=True)
class ArchFile:
    space: str
    choices: list[str]

    def __post_init__(self):
        check_fields(self)


def load_arch(path: Path, space: SearchSpace | None = None) -> tuple[SearchSpace, list[str]]:
    """The space and checked choices of an architecture file; `space` overrides its recorded one."""
    path = Path(path)
    arch = load_record(ArchFile, read_mapping(path, "architecture file"), str(path),
                       extra="ignore")
    if space is None:
        local = path.parent / arch.space
        space = get_space(str(local) if local.suffix in (".yaml", ".yml", ".json") and local.exists()
                          else arch.space)
    try:
        return space, space.check_choices(arch.choices)
    except UserError as exc:
        raise UserError(f"{path}: {exc}") from None


def save_arch(path: Path, space_name: str, choices: list[str], **extra) -> None:
    write_json(path, {"space": space_name, "choices": list(choices), **extra})
