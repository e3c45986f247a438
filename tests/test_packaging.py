"""pyproject.toml gives ranges, constraints.txt the exact tested stack, and the venv is that stack.

No network, no install: reads pyproject.toml, constraints.txt and the installed metadata only.
"""

import tomllib
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.specifiers import Specifier
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parent.parent
LOWER = {">=", ">", "~="}
UPPER = {"<", "<=", "~="}


def direct_requirements() -> list[tuple[str, Requirement]]:
    """(where, requirement) for every dependency in pyproject.toml, the extras' included."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    found = [("dependencies", Requirement(r)) for r in project["dependencies"]]
    for extra, reqs in project.get("optional-dependencies", {}).items():
        found += [(f"extra {extra}", Requirement(r)) for r in reqs]
    return found


def constraints() -> dict[str, str]:
    """{canonical name: pinned version} from constraints.txt; every line must be an exact pin."""
    pins: dict[str, str] = {}
    for number, raw in enumerate((ROOT / "constraints.txt").read_text().splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        req = Requirement(line)
        specs = list(req.specifier)
        assert len(specs) == 1 and specs[0].operator == "==" and "*" not in specs[0].version, (
            f"constraints.txt:{number}: {raw!r} is not an exact pin (name==version)")
        assert not req.marker and not req.extras, f"constraints.txt:{number}: {raw!r}: pin only"
        name = canonicalize_name(req.name)
        assert name not in pins, f"constraints.txt:{number}: {req.name} is pinned twice"
        pins[name] = specs[0].version
    return pins


REQUIREMENTS = direct_requirements()
PINS = constraints()


def test_files_are_not_empty():
    assert len(REQUIREMENTS) >= 10
    assert len(PINS) >= len(REQUIREMENTS)
    assert "pxnas" not in PINS, "constraints.txt must not pin pxnas itself"


@pytest.mark.parametrize("where,req", REQUIREMENTS, ids=[str(r.name) for _, r in REQUIREMENTS])
def test_pyproject_gives_ranges_not_pins(where, req):
    ops = {s.operator for s in req.specifier}
    assert not ops & {"==", "==="}, f"{where}: {req} is an exact pin; pin in constraints.txt"
    assert ops & LOWER, f"{where}: {req} has no lower bound"
    assert ops & UPPER, f"{where}: {req} has no upper bound"


@pytest.mark.parametrize("where,req", REQUIREMENTS, ids=[str(r.name) for _, r in REQUIREMENTS])
def test_constraints_pin_each_direct_dependency_inside_its_range(where, req):
    name = canonicalize_name(req.name)
    assert name in PINS, f"{where}: {req.name} is not pinned in constraints.txt"
    assert req.specifier.contains(PINS[name], prereleases=True), (
        f"constraints.txt pins {req.name}=={PINS[name]}, outside pyproject's {where} {req}")


@pytest.mark.parametrize("name", sorted(PINS))
def test_installed_version_is_the_pinned_one(name):
    try:
        installed = metadata.version(name)
    except metadata.PackageNotFoundError:
        pytest.fail(f"{name}=={PINS[name]} is pinned in constraints.txt but not installed; "
                    "run `make` (pip install -c constraints.txt -e '.[dev,tflite]')")
    # PEP 440 equality: a pin without a local label (torch==2.13.0) matches its local builds
    # (2.13.0+cpu); anything else must be the very version.
    assert Specifier(f"=={PINS[name]}").contains(Version(installed), prereleases=True), (
        f"{name} {installed} is installed, constraints.txt pins {PINS[name]}: run `make`, or "
        "update constraints.txt")
