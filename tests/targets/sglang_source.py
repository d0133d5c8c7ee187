"""What an SGLang release accepts, read from its source without importing it (SGLang
needs CUDA): the flags of `python -m sglang.launch_server` (`ServerArgs.add_cli_args`)
and the `ServerArgs` fields they set, the choices of a flag (quantization methods,
dtypes, load formats), the metric names its collector and HTTP middleware register, and
the routes of its HTTP server.

Where the files come from, first that works:
1. the installed distribution (a GPU machine with the `sglang` extra), when its version
   is the pinned one: its files, read through importlib.metadata (no import);
2. `.tools/sglang-<version>/`, a cache of the few files below;
3. the release's sdist from the package index (`PIP_INDEX_URL`, default PyPI; about
   4 MB), verified against the sha256 the index lists (vllm_source.fetch_sdist_files),
   of which only the files below are kept in the cache.
`python -m tests.targets.sglang_source` fills the cache (`make tools`).

Which version: `pin()`, the one the `sglang` extra of pyproject.toml pins exactly.
"""

from __future__ import annotations

import ast
import importlib.metadata
import sys
import tomllib
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from packaging.requirements import Requirement

from tests.targets.vllm_source import CACHE, REPO, Unreachable, _dataclass_fields, _string_args, fetch_sdist_files

SERVER_ARGS = "sglang/srt/server_args.py"
LAUNCH_SERVER = "sglang/launch_server.py"
COLLECTOR = "sglang/srt/metrics/collector.py"
UTILS = "sglang/srt/utils/common.py"  # the HTTP middleware's sglang:http_* metrics
HTTP_SERVER = "sglang/srt/entrypoints/http_server.py"
WANTED = (SERVER_ARGS, LAUNCH_SERVER, COLLECTOR, UTILS, HTTP_SERVER)

__all__ = ["Unreachable", "SglangSource", "pin", "source", "server_flags", "flag_fields", "choices", "metric_names",
           "routes"]


def pin() -> str:
    """The SGLang release the `sglang` extra pins (sglang==0.5.9 -> 0.5.9)."""
    extras = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    (requirement,) = [Requirement(r) for r in extras["sglang"] if Requirement(r).name == "sglang"]
    (spec,) = requirement.specifier
    if spec.operator != "==" or "*" in spec.version:
        raise LookupError(f"the sglang extra must pin one release (sglang==X.Y.Z), not {requirement}")
    return spec.version


@dataclass(frozen=True)
class SglangSource:
    version: str
    where: str  # "installed" or the cache folder
    files: dict[str, str]  # path -> text


def _installed(version: str) -> SglangSource | None:
    try:
        dist = importlib.metadata.distribution("sglang")
    except importlib.metadata.PackageNotFoundError:
        return None
    if dist.version != version:
        return None
    files = {p: Path(str(dist.locate_file(p))).read_text(encoding="utf-8")
             for p in WANTED if Path(str(dist.locate_file(p))).is_file()}
    return SglangSource(version, "installed", files)


@cache
def source(version: str) -> SglangSource:
    installed = _installed(version)
    if installed is not None:
        return installed
    folder = fetch_sdist_files("sglang", version, WANTED, CACHE / f"sglang-{version}")
    files = {p: (folder / p).read_text(encoding="utf-8") for p in WANTED if (folder / p).is_file()}
    return SglangSource(version, str(folder), files)


def _tree(src: SglangSource, path: str) -> ast.Module:
    return ast.parse(src.files[path])


def _add_cli_args(src: SglangSource) -> ast.FunctionDef:
    for node in ast.walk(_tree(src, SERVER_ARGS)):
        if isinstance(node, ast.ClassDef) and node.name == "ServerArgs":
            for item in node.body:
                if isinstance(item, ast.FunctionDef) and item.name == "add_cli_args":
                    return item
    raise LookupError("ServerArgs.add_cli_args not found")


def _arguments(src: SglangSource) -> list[ast.Call]:
    """The `parser.add_argument(...)` calls of ServerArgs.add_cli_args."""
    return [n for n in ast.walk(_add_cli_args(src))
            if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and n.func.attr == "add_argument"]


def server_flags(src: SglangSource) -> set[str]:
    """Every option string launch_server parses (aliases included: --tp-size, --model)."""
    return {a for call in _arguments(src) for a in _string_args(call) if a.startswith("-")}


def flag_fields(src: SglangSource) -> dict[str, str]:
    """Each flag -> the ServerArgs field one of its spellings names (--tp-size: tp_size);
    flags of no field are left out."""
    fields = _dataclass_fields(_tree(src, SERVER_ARGS), ("ServerArgs",))
    result = {}
    for call in _arguments(src):
        spellings = [a for a in _string_args(call) if a.startswith("--")]
        named = [s[2:].replace("-", "_") for s in spellings if s[2:].replace("-", "_") in fields]
        for spelling in spellings:
            if named:
                result[spelling] = named[0]
    return result


def _module_list(tree: ast.Module, name: str) -> list[str]:
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == name for t in node.targets):
            return [e.value for e in ast.walk(node.value) if isinstance(e, ast.Constant) and isinstance(e.value, str)]
    raise LookupError(f"{name} = [...] not found")


def choices(src: SglangSource, flag: str) -> set[str]:
    """The `choices=` of a flag: a literal list, or a module-level list such as
    QUANTIZATION_CHOICES."""
    for call in _arguments(src):
        if flag in _string_args(call):
            for keyword in call.keywords:
                if keyword.arg == "choices":
                    value = keyword.value
                    if isinstance(value, ast.Name):
                        return set(_module_list(_tree(src, SERVER_ARGS), value.id))
                    return {e.value for e in ast.walk(value) if isinstance(e, ast.Constant) and isinstance(e.value, str)}
            raise LookupError(f"{flag} has no choices")
    raise LookupError(f"{flag} is not a flag of sglang {src.version}")


def metric_names(src: SglangSource) -> set[str]:
    """The `name=` of every Prometheus metric the collector and the HTTP middleware create."""
    names = set()
    for path in (COLLECTOR, UTILS):
        for node in ast.walk(_tree(src, path)):
            if isinstance(node, ast.Call):
                for keyword in node.keywords:
                    if keyword.arg == "name" and isinstance(keyword.value, ast.Constant) \
                            and str(keyword.value.value).startswith("sglang:"):
                        names.add(keyword.value.value)
    return names


def routes(src: SglangSource) -> set[str]:
    """The paths of the HTTP server's `@app.get/post(...)` routes."""
    found = set()
    for node in ast.walk(_tree(src, HTTP_SERVER)):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for decorator in node.decorator_list:
                if isinstance(decorator, ast.Call) and isinstance(decorator.func, ast.Attribute) \
                        and decorator.func.attr in ("get", "post", "api_route") and decorator.args:
                    first = decorator.args[0]
                    if isinstance(first, ast.Constant) and isinstance(first.value, str):
                        found.add(first.value)
    return found


def main() -> None:
    version = pin()
    print(f"sglang {version}: {source(version).where}")


if __name__ == "__main__":
    sys.exit(main())
