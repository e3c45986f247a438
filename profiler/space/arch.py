"""Architecture files: {"space": NAME, "resolution": R, "choices": [one op name per searchable
layer], ...}.

NAME is a preset or a space file path (relative paths are taken from the architecture file's folder);
"resolution" is there when the space is taken at another resolution than its own.
Other fields (a search's predicted latency, say) are kept but not needed.

Wherever an architecture file is read, a net.config of Once-for-All or ProxylessNAS may stand for it
(a .config file, or JSON with their `first_conv` and `blocks`): it is read into the preset it
belongs to (netconfig.py), at the image size of the run.config beside it, if there is one.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from profiler.errors import UserError
from profiler.files import write_json
from profiler.records import check_fields, load_record, read_mapping, spec
from .netconfig import beside, import_net_config, is_net_config
from .spaces import SearchSpace, get_space, split_resolution


@dataclass(frozen=True)
class ArchFile:
    space: str
    choices: list[str]
    resolution: int | None = spec(None, ge=1, le=4096)

    def __post_init__(self):
        check_fields(self)


def load_arch(path: Path, space: SearchSpace | None = None) -> tuple[SearchSpace, list[str]]:
    """The space and checked choices of an architecture file; `space` overrides its recorded one."""
    path = Path(path)
    config = path.suffix.lower() == ".config"
    data = read_mapping(path, "net.config" if config else "architecture file", json_only=config)
    if config or is_net_config(data):
        return import_net_config(path, beside(path), space=space, data=data)
    arch = load_record(ArchFile, data, str(path), extra="ignore")
    if space is None:
        local = path.parent / arch.space
        space = get_space(str(local) if local.suffix in (".yaml", ".yml", ".json") and local.exists()
                          else arch.space, arch.resolution)
    try:
        return space, space.check_choices(arch.choices)
    except UserError as exc:
        raise UserError(f"{path}: {exc}") from None


def save_arch(path: Path, space_name: str, choices: list[str], **extra) -> None:
    """`space_name` may be NAME@R: it is written as NAME and the resolution R."""
    name, resolution = split_resolution(space_name)
    write_json(path, {"space": name, **({"resolution": resolution} if resolution else {}),
                      "choices": list(choices), **extra})
