"""pyproject.toml gives ranges, constraints.txt the exact tested stack, and the venv is that stack;
the wheel `pip wheel .` builds holds every package and works once installed.

No network: the wheel is built with the venv's setuptools (no build isolation) and installed without
dependencies into a fresh venv that borrows this venv's libraries but not its editable pxnas.
"""

import os
import shutil
import subprocess
import sys
import sysconfig
import tomllib
import zipfile
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


TOP_PACKAGES = ("profiler", "predictors", "search", "device_scripts")


def _not_source(folder, names) -> list[str]:
    """What a copy of the checkout leaves out: the venv, git and build/ at the top (a package may
    be named build: profiler/build), egg-info and caches anywhere."""
    top = {".venv", ".git", "build"} if Path(folder) == ROOT else set()
    return [n for n in names if n in top or n.endswith(".egg-info")
            or n in ("__pycache__", ".pytest_cache")]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The wheel of a copy of the working tree (building in the checkout would write build/ and
    egg-info beside a colleague's work)."""
    base = tmp_path_factory.mktemp("wheel")
    src = base / "src"
    shutil.copytree(ROOT, src, ignore=_not_source)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                    "--no-index", "-q", "-w", base / "dist", src], check=True, capture_output=True)
    (found,) = (base / "dist").glob("pxnas-*.whl")
    return found


@pytest.fixture(scope="module")
def installed(wheel, tmp_path_factory) -> Path:
    """A fresh venv with the wheel installed in it: this venv's site-packages is on its path
    through a .pth line, which (unlike a site dir) runs none of that folder's .pth files, so the
    editable install's finder, which would quietly serve a package the wheel lacks from the
    checkout, stays out."""
    venv = tmp_path_factory.mktemp("venv") / "v"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", venv], check=True)
    purelib = Path(subprocess.run([venv / "bin" / "python", "-c",
                                   "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                  check=True, capture_output=True, text=True).stdout.strip())
    borrowed = dict.fromkeys(sysconfig.get_paths()[k] for k in ("purelib", "platlib"))
    (purelib / "borrowed-deps.pth").write_text("".join(f"{p}\n" for p in borrowed))
    subprocess.run([sys.executable, "-m", "pip", "--python", venv / "bin" / "python", "install",
                    "--no-deps", "--no-index", "-q", wheel], check=True, capture_output=True)
    return venv


def _run_installed(venv: Path, *argv, cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PXNAS_DEVICES"] = str(cwd / "no-devices")  # the shipped profiles only, not the user's
    return subprocess.run([venv / "bin" / argv[0], *argv[1:]], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)


def test_wheel_holds_every_package_and_no_test_or_bench(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    folders = {n.rsplit("/", 1)[0] for n in names if "/" in n}
    packages = {str(p.parent.relative_to(ROOT)) for top in TOP_PACKAGES
                for p in (ROOT / top).rglob("*.py") if "__pycache__" not in p.parts}
    assert not packages - folders, f"the wheel lacks {sorted(packages - folders)}"
    assert {f"profiler/devices/profiles/{p.name}" for p in
            (ROOT / "profiler" / "devices" / "profiles").glob("*.yaml")} <= set(names)
    assert not {n.split("/")[0] for n in names} & {"tests", "bench", "build", "data"}


def test_installed_wheel_lists_the_blocks_and_the_shipped_devices(installed, tmp_path):
    from profiler.space.spaces import get_space

    where = _run_installed(installed, "python", "-c",
                           "import profiler.space.kinds, profiler.devices.runtimes, profiler; "
                           "print(profiler.__file__)", cwd=tmp_path)
    assert where.returncode == 0, where.stderr
    assert Path(where.stdout.strip()).is_relative_to(installed), where.stdout
    proc = _run_installed(installed, "pxprof", "blocks", "--space", "tiny", cwd=tmp_path)
    assert proc.returncode == 0 and not proc.stderr, proc.stderr[-2000:]
    assert proc.stdout.split() == [b.key for b in get_space("tiny").blocks()]
    proc = _run_installed(installed, "pxprof", "devices", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    shipped = sorted(p.stem for p in (ROOT / "profiler" / "devices" / "profiles").glob("*.yaml"))
    assert [line.split()[0] for line in proc.stdout.splitlines()] == shipped
