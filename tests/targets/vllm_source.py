"""What a vLLM release accepts, read from its source without importing it (vLLM needs
CUDA): the `vllm serve` flags, the engine arguments, the quantization methods and
dtypes, and the vllm-openai image's entrypoint.

Where the files come from, first that works:
1. the installed distribution (a GPU machine with the `llm` extra), when its version
   is the one asked for: its files, read through importlib.metadata (no import);
2. `.tools/vllm-<version>/`, a cache of the few files below;
3. the release's sdist from the package index (`PIP_INDEX_URL`, default PyPI; about
   45 MB, a second or so), verified against the sha256 the index lists, of which only
   the files below are kept in the cache.
`python -m tests.targets.vllm_source` fills the cache for every pin (`make tools`).

Which versions: `llm_pin()` is the newest release the `llm` extra of pyproject.toml
allows (the vLLM of the Deployment); `ray_llm_pin()` the one Ray's own `llm` extra
pins (the vLLM inside Ray Serve LLM).
"""

from __future__ import annotations

import ast
import hashlib
import importlib.metadata
import io
import json
import os
import re
import shutil
import sys
import tarfile
import tomllib
import urllib.request
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from packaging.requirements import Requirement
from packaging.version import Version

REPO = Path(__file__).resolve().parents[2]
CACHE = REPO / ".tools"
DEFAULT_INDEX = "https://pypi.org/simple"

# The files read (paths inside the package; the frontend arguments moved in 0.3x).
ARG_UTILS = "vllm/engine/arg_utils.py"
FRONTEND_ARGS = (
    "vllm/entrypoints/common/cli_args.py",  # 0.33
    "vllm/entrypoints/launchers/cli_args.py",  # 0.29
    "vllm/entrypoints/openai/cli_args.py",  # older
)
QUANTIZATION = "vllm/model_executor/layers/quantization/__init__.py"
MODEL_CONFIG = ("vllm/config/model.py", "vllm/config/__init__.py", "vllm/config.py")
DOCKERFILE = "docker/Dockerfile"  # sdist only
LAUNCHER = "vllm/entrypoints/cli/main.py"  # what a local apply runs (contracts.llm.VLLM_MODULE), as the image does
PROJECT = "pyproject.toml"  # the console scripts: `vllm` is the image's entrypoint
WANTED = (ARG_UTILS, *FRONTEND_ARGS, QUANTIZATION, *MODEL_CONFIG, DOCKERFILE, LAUNCHER, PROJECT)


class Unreachable(Exception):
    """The package index could not be reached (a test skips, saying so)."""


# --- which versions ------------------------------------------------------------------
def llm_pin() -> str:
    """The newest vLLM release the `llm` extra allows (vllm==0.33.* -> 0.33.0)."""
    extras = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    (requirement,) = [Requirement(r) for r in extras["llm"] if Requirement(r).name == "vllm"]
    exact = [s.version for s in requirement.specifier if s.operator == "==" and "*" not in s.version]
    if exact:
        return exact[0]
    try:
        released = _index_versions()
    except Unreachable:  # offline: the newest matching release already in the cache
        cached = [p.name.removeprefix("vllm-") for p in CACHE.glob("vllm-*") if (p / "SOURCE").exists()]
        released = [v for v in cached if requirement.specifier.contains(v)]
        if not released:
            raise
    candidates = [v for v in released if requirement.specifier.contains(v)]
    if not candidates:
        raise LookupError(f"no vllm release on the index satisfies {requirement}")
    return str(max(candidates, key=Version))


def ray_llm_pin() -> str:
    """The vLLM that Ray Serve LLM runs: Ray's `llm` extra pins it (ray 2.60: 0.29.0)."""
    for text in importlib.metadata.requires("ray") or []:
        requirement = Requirement(text)
        if requirement.name == "vllm" and requirement.marker and "llm" in str(requirement.marker):
            (spec,) = requirement.specifier
            return spec.version
    raise LookupError("ray's metadata pins no vllm for its llm extra")


# --- fetching --------------------------------------------------------------------------
def _index_url() -> str:
    return os.environ.get("PIP_INDEX_URL", DEFAULT_INDEX).rstrip("/")


@cache
def _index_files(project: str = "vllm") -> tuple[tuple[str, str, str], ...]:
    """(filename, url, sha256) of every file of `project` on the index (PEP 691 JSON)."""
    request = urllib.request.Request(
        f"{_index_url()}/{project}/", headers={"Accept": "application/vnd.pypi.simple.v1+json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            data = json.load(response)
    except OSError as error:
        raise Unreachable(f"package index {_index_url()} unreachable: {error}") from error
    return tuple((f["filename"], f["url"], f.get("hashes", {}).get("sha256", "")) for f in data["files"])


def _index_versions() -> list[str]:
    found = (re.fullmatch(r"vllm-(.+)\.tar\.gz", name) for name, _, _ in _index_files())
    return [m.group(1) for m in found if m]


def _download_sdist(version: str, project: str = "vllm") -> bytes:
    name = f"{project}-{version}.tar.gz"
    matches = [(url, sha) for filename, url, sha in _index_files(project) if filename == name]
    if not matches:
        raise LookupError(f"{name} is not on {_index_url()}")
    url, sha256 = matches[0]
    try:
        with urllib.request.urlopen(url, timeout=300) as response:
            data = response.read()
    except OSError as error:
        raise Unreachable(f"{url} unreachable: {error}") from error
    if not sha256 or hashlib.sha256(data).hexdigest() != sha256:
        raise ValueError(f"{name}: sha256 does not match the index's {sha256!r}")
    return data


def _cache_dir(version: str) -> Path:
    return CACHE / f"vllm-{version}"


def _wanted_line(wanted: tuple[str, ...] = WANTED) -> str:
    return "files: " + " ".join(sorted(wanted))


def fetch(version: str) -> Path:
    """The cache folder of `version`'s files, downloading the sdist once (again when
    WANTED changed since)."""
    return fetch_sdist_files("vllm", version, WANTED, _cache_dir(version))


def fetch_sdist_files(project: str, version: str, wanted: tuple[str, ...], folder: Path) -> Path:
    """`folder` holding the `wanted` files (paths inside the sdist's top folder) of
    `project`'s release sdist, verified against the index's sha256; downloaded once
    (again when `wanted` changed since). tests/targets/sglang_source.py uses it too."""
    marker = folder / "SOURCE"
    if marker.exists() and _wanted_line(wanted) in marker.read_text().splitlines():
        return folder
    data = _download_sdist(version, project)
    staging = folder.with_name(folder.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    prefix = f"{project}-{version}/"
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as archive:
        for member in archive.getmembers():
            rel = member.name.removeprefix(prefix)
            if member.isfile() and rel in wanted:
                target = staging / rel
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(archive.extractfile(member).read())
    digest = hashlib.sha256(data).hexdigest()
    (staging / "SOURCE").write_text(f"{project}-{version}.tar.gz sha256 {digest}\n{_wanted_line(wanted)}\n")
    shutil.rmtree(folder, ignore_errors=True)
    staging.rename(folder)
    return folder


# --- reading ----------------------------------------------------------------------------
@dataclass(frozen=True)
class VllmSource:
    version: str
    where: str  # "installed" or the cache folder
    files: dict[str, str]  # path -> text, for the WANTED files this source has

    def first(self, paths: tuple[str, ...]) -> str:
        for path in paths:
            if path in self.files:
                return self.files[path]
        raise FileNotFoundError(f"vllm {self.version} ({self.where}) has none of {paths}")


def _installed(version: str) -> VllmSource | None:
    try:
        dist = importlib.metadata.distribution("vllm")
    except importlib.metadata.PackageNotFoundError:
        return None
    if dist.version != version:
        return None
    files = {}
    for path in WANTED:
        located = Path(str(dist.locate_file(path)))
        if located.is_file():
            files[path] = located.read_text(encoding="utf-8")
    return VllmSource(version, "installed", files)


@cache
def source(version: str) -> VllmSource:
    installed = _installed(version)
    if installed is not None:
        return installed
    folder = fetch(version)
    files = {p: (folder / p).read_text(encoding="utf-8") for p in WANTED if (folder / p).is_file()}
    return VllmSource(version, str(folder), files)


def _string_args(call: ast.Call) -> list[str]:
    return [a.value for a in call.args if isinstance(a, ast.Constant) and isinstance(a.value, str)]


def _add_argument_flags(tree: ast.AST) -> set[str]:
    """Every literal option string given to an `add_argument(...)` call."""
    flags = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "add_argument":
            flags.update(a for a in _string_args(node) if a.startswith("-"))
    return flags


def _dataclass_fields(tree: ast.AST, names: tuple[str, ...]) -> set[str]:
    """The annotated fields of the named classes (ClassVars and private names left out)."""
    fields = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef) and node.name in names:
            for item in node.body:
                if isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name):
                    if "ClassVar" in ast.unparse(item.annotation) or item.target.id.startswith("_"):
                        continue
                    fields.add(item.target.id)
    return fields


FRONTEND_CLASSES = ("BaseFrontendArgs", "FrontendArgs")
ENGINE_CLASSES = ("EngineArgs", "AsyncEngineArgs")


def serve_flags(src: VllmSource) -> set[str]:
    """The options `vllm serve` parses: the engine's (EngineArgs.add_cli_args and
    AsyncEngineArgs'), the server's own in make_arg_parser, and the frontend dataclass
    fields, which FrontendArgs.add_cli_args turns into `--field-name`."""
    engine = ast.parse(src.files[ARG_UTILS])
    frontend = ast.parse(src.first(FRONTEND_ARGS))
    flags = _add_argument_flags(engine) | _add_argument_flags(frontend)
    flags |= {"--" + name.replace("_", "-") for name in _dataclass_fields(frontend, FRONTEND_CLASSES)}
    return flags


def engine_kwargs(src: VllmSource) -> set[str]:
    """What Ray Serve LLM accepts in `engine_kwargs`: the fields of vLLM's
    AsyncEngineArgs (EngineArgs') and FrontendArgs dataclasses."""
    engine = _dataclass_fields(ast.parse(src.files[ARG_UTILS]), ENGINE_CLASSES)
    return engine | _dataclass_fields(ast.parse(src.first(FRONTEND_ARGS)), FRONTEND_CLASSES)


def _literal_strings(tree: ast.AST, name: str) -> set[str]:
    """The strings of `name = Literal[...]` (a module-level type alias)."""
    for node in ast.walk(tree):
        value = None
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == name for t in node.targets):
            value = node.value
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.target.id == name:
            value = node.value
        if isinstance(value, ast.Subscript):
            return {n.value for n in ast.walk(value.slice) if isinstance(n, ast.Constant) and isinstance(n.value, str)}
    raise LookupError(f"{name} = Literal[...] not found")


def quantization_methods(src: VllmSource) -> set[str]:
    """The built-in `--quantization` methods (plugins may register more)."""
    return _literal_strings(ast.parse(src.files[QUANTIZATION]), "QuantizationMethods")


def dtypes(src: VllmSource) -> set[str]:
    """The `--dtype` values."""
    return _literal_strings(ast.parse(src.first(MODEL_CONFIG)), "ModelDType")


def openai_image_entrypoint(src: VllmSource) -> list[str] | None:
    """The ENTRYPOINT of the Dockerfile's `vllm-openai` stage (None without the sdist)."""
    text = src.files.get(DOCKERFILE)
    if text is None:
        return None
    stage = None
    for line in text.splitlines():
        match = re.match(r"FROM\s+\S+\s+AS\s+(\S+)", line, re.IGNORECASE)
        if match:
            stage = match.group(1)
        elif stage == "vllm-openai" and line.startswith("ENTRYPOINT"):
            return json.loads(line.removeprefix("ENTRYPOINT").strip())
    raise LookupError("no ENTRYPOINT in the vllm-openai stage")


def main() -> None:
    for version in sorted({llm_pin(), ray_llm_pin()}, key=Version):
        folder = fetch(version)
        print(f"vllm {version}: {folder}")


if __name__ == "__main__":
    sys.exit(main())
