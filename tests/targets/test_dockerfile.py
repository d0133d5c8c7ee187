"""The runtime image (`deploy.image`): the committed Dockerfile, read with BuildKit's own
parser (the `dockerfile` package wraps moby/buildkit's Go parser), checked by checkov,
and the wheel its builder stage builds, built here the same way and checked against
every module and import path the generated manifests (generated/, tests/golden/) call.

No Docker engine is needed: what these tests cannot check is the image build itself
(base digest pull, the pip resolutions) and the image at run time."""

from __future__ import annotations

import ast
import fnmatch
import json
import re
import shlex
import shutil
import subprocess
import sys
import time
import tomllib
import zipfile
from dataclasses import dataclass, field
from email.parser import Parser
from functools import lru_cache
from pathlib import Path, PurePosixPath

import dockerfile  # fails (never skips) when missing: it is in the dev extra
import pytest
import yaml
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet

from tests.conftest import REPO
from tests.targets.conftest import CHECKOV, require

DOCKERFILE = REPO / "Dockerfile"
DOCKERIGNORE = REPO / ".dockerignore"
MANIFEST_ROOTS = (REPO / "generated", REPO / "tests" / "golden")
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
VARIANTS = ("cpu", "cuda")
TORCH_CPU_INDEX = "https://download.pytorch.org/whl/cpu"
# python:<3.11.patch>[-<variant>][@sha256:<digest>]; a digest is required too.
BASE_IMAGE = re.compile(r"^(?:docker\.io/(?:library/)?)?python:3\.11\.(\d+)(-[a-z0-9.-]+)?@sha256:[0-9a-f]{64}$")
BUILD_TOOLS = re.compile(r"\b(gcc|g\+\+|cc|clang|make|cmake|build-essential|[a-z0-9.+-]+-dev|git|cargo|rustc)\b")
# Written at run time: must lie below /tmp (the pods' emptyDir on a read-only root).
WRITABLE_ENV = ("HOME", "XDG_CACHE_HOME", "XDG_CONFIG_HOME", "HF_HOME", "MPLCONFIGDIR", "MLOPS_STATE_DIR")


# --- the Dockerfile, parsed ----------------------------------------------------------------
@dataclass
class Stage:
    name: str
    base: str  # an image, or the name of an earlier stage
    commands: list = field(default_factory=list)


@lru_cache(maxsize=None)
def parsed() -> tuple:
    return dockerfile.parse_file(str(DOCKERFILE))


@lru_cache(maxsize=None)
def stages() -> dict[str, Stage]:
    result: dict[str, Stage] = {}
    current = None
    for command in parsed():
        if command.cmd == "FROM":
            value = [v for v in command.value if v]
            assert len(value) == 3 and value[1].upper() == "AS", f"every stage is named (FROM image AS name): {command.original}"
            current = Stage(name=value[2], base=value[0])
            assert current.name not in result, f"stage {current.name} defined twice"
            result[current.name] = current
        else:
            assert current is not None, f"instruction before the first FROM: {command.original}"
            current.commands.append(command)
    return result


def chain(name: str) -> list[Stage]:
    """The stage and the stages it builds on, base first."""
    found = []
    while name in stages():
        found.insert(0, stages()[name])
        name = stages()[name].base
    return found


def commands(name: str, cmd: str | None = None) -> list:
    return [c for stage in chain(name) for c in stage.commands if cmd is None or c.cmd == cmd]


def run_lines(name: str) -> list[str]:
    return [" ".join(c.value) for c in commands(name, "RUN")]


def args_of(stage: Stage) -> dict[str, str]:
    values = {}
    for command in stage.commands:
        if command.cmd == "ARG":
            for item in command.value:
                key, _, default = item.partition("=")
                values[key] = default.strip('"')
    return values


def _pairs(name: str, instruction: str) -> dict[str, str]:
    """KEY value pairs of every ENV or LABEL of a stage and the stages it builds on."""
    pairs: dict[str, str] = {}
    for command in commands(name, instruction):
        values = list(command.value)
        pairs.update({values[i]: values[i + 1].strip('"') for i in range(0, len(values), 2)})
    return pairs


def env_of(name: str) -> dict[str, str]:
    return _pairs(name, "ENV")


def labels_of(name: str) -> dict[str, str]:
    return _pairs(name, "LABEL")


def flag(command, name: str) -> str | None:
    for item in command.flags:
        if item.startswith(f"--{name}="):
            return item.split("=", 1)[1]
    return None


def external_bases() -> list[str]:
    return [s.base for s in stages().values() if s.base not in stages()]


def wheel_copies(name: str) -> list:
    return [c for c in commands(name, "COPY") if flag(c, "from") == "builder" and any(v.endswith(".whl") for v in c.value[:-1])]


def wheel_run() -> list[str]:
    """The builder's `pip wheel` command, as argv."""
    runs = [shlex.split(" ".join(c.value)) for c in stages()["builder"].commands if c.cmd == "RUN" and "pip wheel" in " ".join(c.value)]
    assert len(runs) == 1, f"the builder stage builds the wheel in one `pip wheel` RUN: {runs}"
    return runs[0]


def option(argv: list[str], name: str) -> str:
    assert name in argv, f"{name} missing from {' '.join(argv)}"
    return argv[argv.index(name) + 1]


# --- 1. structure ---------------------------------------------------------------------------
def test_stages_are_named_with_a_builder_and_both_variants():
    names = list(stages())
    assert len(names) >= 2, names
    assert "builder" in names and set(VARIANTS) <= set(names), names
    # `docker build .` without --target builds the last stage: the CPU variant.
    assert names[-1] == "cpu", f"the default (last) stage should be cpu, not {names[-1]}"
    # Both variants build on a shared runtime stage, not on the builder.
    for variant in VARIANTS:
        assert "builder" not in [s.name for s in chain(variant)], f"{variant} must not build on the builder stage"


def test_base_is_python_3_11_pinned_to_a_patch_release_and_a_digest():
    bases = external_bases()
    assert bases, "no external base image"
    for base in bases:
        assert ":latest" not in base and "$" not in base, base
        assert BASE_IMAGE.match(base), f"{base}: want python:3.11.<patch>[-variant]@sha256:<digest>"
    assert len(set(bases)) == 1, f"builder and runtime should share one base (same Python ABI): {sorted(set(bases))}"
    base_labels = labels_of("cpu")
    name, digest = bases[0].split("@")
    assert base_labels.get("org.opencontainers.image.base.digest") == digest
    assert base_labels.get("org.opencontainers.image.base.name", "").endswith(name)


@pytest.mark.parametrize("variant", VARIANTS)
def test_variant_runs_as_uid_1000(variant):
    users = commands(variant, "USER")
    assert users, f"{variant}: no USER"
    last = users[-1].value[0]
    assert last in ("1000", "1000:1000"), f"{variant}: last USER is {last!r}, want the pods' uid 1000 (runAsUser/fsGroup)"
    # The USER comes after every RUN of the stage (installs run as root, the image as 1000).
    own = chain(variant)[-1].commands
    last_user = max(i for i, c in enumerate(own) if c.cmd == "USER")
    assert all(c.cmd != "RUN" for c in own[last_user:]), f"{variant}: RUN after the final USER"
    # uid/gid 1000 has a passwd entry (getpass.getuser() and pwd lookups work).
    runs = " ".join(run_lines(variant))
    assert re.search(r"useradd\b[^&]*--uid 1000\b", runs) and re.search(r"groupadd\b[^&]*--gid 1000\b", runs), runs


@pytest.mark.parametrize("variant", VARIANTS)
def test_variant_has_oci_labels_from_build_args(variant):
    labels = labels_of(variant)
    declared = {k for s in chain(variant) for k in args_of(s)}
    for key, arg in (("org.opencontainers.image.source", "SOURCE_URL"), ("org.opencontainers.image.revision", "REVISION")):
        assert key in labels, f"{variant}: label {key} missing ({sorted(labels)})"
        assert labels[key] == f"${{{arg}}}", f"{variant}: {key}={labels[key]!r}, want ${{{arg}}}"
        assert arg in declared, f"{variant}: ARG {arg} not declared in the stage"
    assert labels.get("org.opencontainers.image.title")
    version_args = {k: v for s in chain(variant) for k, v in args_of(s).items() if k == "VERSION"}
    assert labels.get("org.opencontainers.image.version") == "${VERSION}"
    assert version_args.get("VERSION") == PYPROJECT["project"]["version"], "ARG VERSION default != pyproject version"


@pytest.mark.parametrize("variant", VARIANTS)
def test_variant_installs_the_builders_wheel_and_removes_it(variant):
    copies = wheel_copies(variant)
    assert len(copies) == 1, f"{variant}: want one `COPY --from=builder .../*.whl`: {[c.original for c in commands(variant, 'COPY')]}"
    destination = copies[0].value[-1].rstrip("/")
    installs = [r for r in run_lines(variant) if "pip install" in r and destination in r]
    assert len(installs) == 1, f"{variant}: no `pip install {destination}/...whl`"
    assert f"rm -rf {destination}" in installs[0], f"{variant}: the wheel is left in the image: {installs[0]}"


def test_every_pip_install_skips_the_cache():
    for stage in stages().values():
        for command in stage.commands:
            line = " ".join(command.value)
            if command.cmd == "RUN" and "pip install" in line:
                for part in line.split("&&"):
                    if "pip install" in part:
                        assert "--no-cache-dir" in part, f"{stage.name}: {part.strip()}"


@pytest.mark.parametrize("variant", VARIANTS)
def test_variant_carries_no_build_tools(variant):
    for line in run_lines(variant):
        for part in re.split(r"&&|;", line):
            if re.search(r"\bapt(-get)? (-\S+ )*install\b", part):
                packages = [w for w in part.split()[2:] if not w.startswith("-") and w != "install"]
                assert not [p for p in packages if BUILD_TOOLS.search(p)], f"{variant}: build tools installed: {part.strip()}"
                assert "--no-install-recommends" in part, f"{variant}: {part.strip()}"
                assert "rm -rf /var/lib/apt/lists" in line, f"{variant}: apt lists left in the image: {line}"
            assert not re.search(r"\bpip (wheel|download)\b", part), f"{variant}: builds in the final stage: {part.strip()}"
    assert not [c for c in commands(variant, "COPY") if flag(c, "from") == "builder" and not any(v.endswith(".whl") for v in c.value[:-1])], \
        f"{variant}: copies more than the wheel from the builder"


@pytest.mark.parametrize("variant", VARIANTS)
def test_variant_has_the_shared_libraries_the_wheels_link(variant):
    """LightGBM's lib_lightgbm.so links libgomp.so.1 (OpenMP), which python:slim lacks:
    without it `model.architecture: lightgbm` fails at import on a cluster."""
    import lightgbm

    library = Path(lightgbm.__file__).parent / "lib" / "lib_lightgbm.so"
    linked = subprocess.run(["ldd", str(library)], capture_output=True, text=True, check=True).stdout
    assert "libgomp.so.1" in linked
    installs = [part for line in run_lines(variant) for part in re.split(r"&&|;", line)
                if re.search(r"\bapt(-get)? (-\S+ )*install\b", part)]
    assert any("libgomp1" in part.split() for part in installs), installs


def test_cpu_variant_takes_torch_from_the_cpu_index():
    torch_pin = next(Requirement(r) for r in PYPROJECT["project"]["dependencies"] if Requirement(r).name == "torch")
    torch_arg = args_of(stages()["cpu"]).get("TORCH_VERSION")
    assert torch_arg and torch_pin.specifier.contains(torch_arg), f"ARG TORCH_VERSION={torch_arg} vs pyproject {torch_pin}"
    runs = run_lines("cpu")
    torch_installs = [r for r in runs if f"--index-url {TORCH_CPU_INDEX}" in r]
    assert torch_installs and '"torch==${TORCH_VERSION}"' in torch_installs[0], runs
    # torch comes first: the project install must find it already satisfied.
    steps = [p.strip() for p in torch_installs[0].split("&&")]
    torch_step = next(i for i, p in enumerate(steps) if TORCH_CPU_INDEX in p)
    wheel_step = next(i for i, p in enumerate(steps) if ".whl" in p and "pip install" in p)
    assert torch_step < wheel_step, steps
    assert not any("[llm]" in r for r in runs), "the cpu variant must not install the llm extra (vLLM needs CUDA)"
    # 2.13.0+cpu (the CPU index's local version) satisfies the wheel's torch==2.13.0.
    assert torch_pin.specifier.contains(f"{torch_arg}+cpu")


def test_cuda_variant_takes_torch_from_pypi():
    """PyPI's torch is the CUDA build. No `llm` extra: the LLM servers run vLLM's own
    image, and vLLM 0.33 pins a torch this project's pin excludes (it would not resolve)."""
    runs = run_lines("cuda")
    assert not any("download.pytorch.org" in r or "--index-url" in r or "--extra-index-url" in r for r in runs), runs
    assert any("pip install" in r and ".whl" in r for r in runs), runs
    assert not any("[llm]" in r for r in runs), runs


@pytest.mark.parametrize("variant", VARIANTS)
def test_variant_writes_only_below_tmp(variant):
    env = env_of(variant)
    assert env.get("HOME") == "/tmp", env
    for key in WRITABLE_ENV:
        assert key in env, f"{variant}: ENV {key} not set"
        assert PurePosixPath(env[key]).is_relative_to("/tmp"), f"{variant}: {key}={env[key]} is outside /tmp"
    assert env.get("PYTHONDONTWRITEBYTECODE") == "1"
    assert commands(variant, "HEALTHCHECK"), f"{variant}: no HEALTHCHECK (or an explicit HEALTHCHECK NONE)"


def test_workdir_is_the_root_the_manifests_pass():
    """`--root /app` (RAG index) and the Serve apps' `root: /app` are the image's WORKDIR,
    where the project files are; train/monitor take the working directory as the root."""
    roots = set()
    for path, doc in manifest_documents():
        for argv in command_lines(doc):
            if "--root" in argv:
                roots.add(argv[argv.index("--root") + 1])
        for app in serve_applications(doc):
            if isinstance(app.get("args"), dict) and "root" in app["args"]:
                roots.add(app["args"]["root"])
    assert roots, "no --root/root in the generated manifests"
    for variant in VARIANTS:
        workdirs = [c.value[0] for c in commands(variant, "WORKDIR")]
        assert workdirs and {workdirs[-1]} == roots, f"{variant}: WORKDIR {workdirs[-1:]} vs manifests' roots {sorted(roots)}"
        copied = {PurePosixPath(s).parts[0] for c in commands(variant, "COPY") if not flag(c, "from") for s in c.value[:-1]}
        # What the recipes read relative to the root: the data, the RAG corpus, its eval set.
        assert {"data", "docs", "README.md", "eval", "pyproject.toml"} <= copied, sorted(copied)


def test_dockerignore_keeps_every_copied_path():
    lines = [ln.strip() for ln in DOCKERIGNORE.read_text(encoding="utf-8").splitlines() if ln.strip() and not ln.startswith("#")]
    assert lines[0] == "*", "deny by default"
    included = {ln[1:].rstrip("/") for ln in lines if ln.startswith("!")}
    sources = {PurePosixPath(source).parts[0] for stage in stages().values() for c in stage.commands
               if c.cmd == "COPY" and not flag(c, "from") for source in c.value[:-1]}
    assert sources <= included, f"COPY sources the .dockerignore leaves out: {sorted(sources - included)}"
    for source in sources:
        assert (REPO / source).exists(), f"COPY {source}: not in the repository"


# --- 2. checkov ------------------------------------------------------------------------------
def test_checkov_dockerfile_checks_pass():
    checkov = require(CHECKOV)
    proc = subprocess.run(
        [str(checkov), "--framework", "dockerfile", "-f", str(DOCKERFILE), "-o", "json", "--skip-download"],
        capture_output=True, text=True, timeout=300, cwd=REPO,
    )
    assert proc.stdout.strip(), f"checkov wrote no report (exit {proc.returncode}): {proc.stderr[-2000:]}"
    report = json.loads(proc.stdout)
    report = report[0] if isinstance(report, list) else report
    failed = [f"{f['check_id']} {f['check_name']} (line {f['file_line_range']})" for f in report["results"].get("failed_checks", [])]
    summary = report["summary"]
    assert summary["failed"] == 0 and failed == [], "\n".join(failed)
    assert summary["parsing_errors"] == 0 and summary["resource_count"] == 1
    assert proc.returncode == 0
    passed = {c["check_id"] for c in report["results"].get("passed_checks", [])}
    # healthcheck, a USER, the last USER not root, no latest tag, apt without `apt`
    assert {"CKV_DOCKER_2", "CKV_DOCKER_3", "CKV_DOCKER_7", "CKV_DOCKER_8", "CKV_DOCKER_9"} <= passed, sorted(passed)


# --- 3. the wheel against the manifests -------------------------------------------------------
def _ignored(name: str) -> bool:
    return name == "__pycache__" or name.endswith((".pyc", ".egg-info")) or name in ("build", "dist", ".mlops")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The builder stage replayed: its COPYs into a fresh context (WORKDIR), then its
    `pip wheel` command with this interpreter and a temporary --wheel-dir."""
    root = tmp_path_factory.mktemp("image")
    workdir = root / "src"
    workdir.mkdir()
    for command in stages()["builder"].commands:
        if command.cmd != "COPY":
            continue
        assert not flag(command, "from"), command.original
        *sources, dest = command.value
        target = workdir / dest
        for source in sources:
            src = REPO / source
            if src.is_dir():  # COPY dir dest: the directory's contents into dest
                shutil.copytree(src, target, ignore=lambda _, names: [n for n in names if _ignored(n)], dirs_exist_ok=True)
            else:  # into dest/ (a folder when it ends in / or several sources go there), or as dest
                to = target / src.name if dest.endswith("/") or len(sources) > 1 else target
                to.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(src, to)
    argv = wheel_run()
    assert argv[:4] == ["python", "-m", "pip", "wheel"], argv
    assert {"--no-deps", "--no-build-isolation"} <= set(argv), argv
    dist = root / "dist"
    argv = [sys.executable, *argv[1:]]
    argv[argv.index("--wheel-dir") + 1] = str(dist)
    started = time.monotonic()
    proc = subprocess.run(argv, cwd=workdir, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"{' '.join(argv)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    built = sorted(dist.glob("*.whl"))
    assert len(built) == 1, built
    print(f"built {built[0].name} in {time.monotonic() - started:.1f} s")
    return built[0]


def test_builder_pins_a_backend_the_project_accepts():
    pins = [Requirement(w) for r in run_lines("builder") if "pip install" in r
            for w in shlex.split(r) if re.match(r"^setuptools[=<>~]", w)]
    assert len(pins) == 1 and str(pins[0].specifier).startswith("=="), f"pin the build backend: {run_lines('builder')}"
    version = str(pins[0].specifier)[2:]
    for requirement in PYPROJECT["build-system"]["requires"]:
        requirement = Requirement(requirement)
        if requirement.name == "setuptools":
            assert requirement.specifier.contains(version), f"setuptools=={version} vs build-system {requirement}"


def test_wheel_is_the_file_the_variants_install(wheel):
    wheel_dir = option(wheel_run(), "--wheel-dir").rstrip("/")
    for variant in VARIANTS:
        for copy in wheel_copies(variant):
            for source in copy.value[:-1]:
                assert str(PurePosixPath(source).parent) == wheel_dir, f"{variant}: COPY {source} is not from {wheel_dir}"
                assert fnmatch.fnmatch(wheel.name, PurePosixPath(source).name), f"{variant}: {source} does not match {wheel.name}"
        for line in run_lines(variant):
            for pattern in re.findall(r"/tmp/wheels/(\S+?\.whl)", line):
                assert fnmatch.fnmatch(wheel.name, pattern), f"{variant}: installs {pattern}, the builder makes {wheel.name}"


def _metadata(wheel: Path):
    with zipfile.ZipFile(wheel) as archive:
        name = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        return Parser().parsestr(archive.read(name).decode("utf-8"))


def _canonical(requirements) -> set[str]:
    return {f"{r.name.lower().replace('_', '-')}{sorted(r.extras)}{SpecifierSet(str(r.specifier))}" for r in requirements}


def test_wheel_requires_exactly_the_runtime_dependencies(wheel):
    requires = [Requirement(r) for r in _metadata(wheel).get_all("Requires-Dist") or []]
    runtime = [r for r in requires if r.marker is None]
    want = [Requirement(r) for r in PYPROJECT["project"]["dependencies"]]
    assert _canonical(runtime) == _canonical(want), (
        f"only in the wheel: {sorted(_canonical(runtime) - _canonical(want))}; "
        f"only in pyproject: {sorted(_canonical(want) - _canonical(runtime))}"
    )
    llm = [r for r in requires if r.marker is not None and r.marker.evaluate({"extra": "llm"})]
    assert _canonical(llm) == _canonical(Requirement(r) for r in PYPROJECT["project"]["optional-dependencies"]["llm"])
    assert _metadata(wheel)["Version"] == PYPROJECT["project"]["version"]


def test_wheel_carries_the_templates_and_the_cli(wheel):
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        entry_points = archive.read(next(n for n in names if n.endswith(".dist-info/entry_points.txt"))).decode()
    templates = sorted(p.relative_to(REPO).as_posix() for p in (REPO / "framework" / "templates").iterdir() if p.is_file())
    assert templates and set(templates) <= names, f"package data missing from the wheel: {sorted(set(templates) - names)}"
    scripts = dict(
        (k.strip(), v.strip()) for k, _, v in
        (line.partition("=") for line in entry_points.split("[console_scripts]", 1)[1].split("[", 1)[0].splitlines() if "=" in line)
    )
    assert scripts.get("mlops") == PYPROJECT["project"]["scripts"]["mlops"], entry_points
    module, attr = scripts["mlops"].split(":")
    assert_importable(names, wheel, module, attr)
    assert not [n for n in names if n.startswith("tests/") or "__pycache__" in n], "tests or byte code in the wheel"


# --- what the manifests call ---------------------------------------------------------------
@lru_cache(maxsize=None)
def manifest_documents() -> tuple:
    found = []
    for base in MANIFEST_ROOTS:
        for path in sorted(base.rglob("*")):
            if path.suffix in (".yaml", ".yml"):
                found += [(path, d) for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d is not None]
            elif path.suffix == ".json":
                found.append((path, json.loads(path.read_text(encoding="utf-8"))))
    assert found, f"no manifests under {MANIFEST_ROOTS}"
    return tuple(found)


def walk(node):
    """Every dict below node, including YAML documents embedded in strings
    (RayService serveConfigV2, RayJob runtimeEnvYAML)."""
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from walk(value)
    elif isinstance(node, str) and "\n" in node and re.search(r"^\s*(applications|import_path|env_vars):", node, re.M):
        yield from walk(yaml.safe_load(node))


def command_lines(doc) -> list[list[str]]:
    """argv of every container command+args, RayJob entrypoint and `bash -c` script."""
    lines = []
    for node in walk(doc):
        if "image" in node and ("command" in node or "args" in node):
            argv = [str(a) for a in (node.get("command") or []) + (node.get("args") or [])]
            lines.append(argv)
        if isinstance(node.get("entrypoint"), str):
            lines.append(shlex.split(node["entrypoint"]))
    expanded = []
    for argv in lines:
        expanded.append(argv)
        for i, arg in enumerate(argv[:-1]):
            if arg == "-c" and argv[0].endswith(("sh", "bash")):
                expanded += [shlex.split(part) for part in re.split(r"&&|;|\|\|", argv[i + 1]) if part.strip()]
    return expanded


def serve_applications(doc) -> list[dict]:
    return [node for node in walk(doc) if isinstance(node.get("import_path"), str)]


def python_modules(argv: list[str]) -> list[str]:
    return [argv[i + 1] for i in range(len(argv) - 1)
            if argv[i] == "-m" and i > 0 and PurePosixPath(argv[i - 1]).name.startswith("python")]


@lru_cache(maxsize=None)
def called() -> dict[str, set[str]]:
    """entry -> the manifest files that call it: `python -m M` (kind m), Serve import
    paths M:attr (kind i) and console scripts (kind s)."""
    calls: dict[str, set[str]] = {}
    for path, doc in manifest_documents():
        where = path.relative_to(REPO).as_posix()
        for argv in command_lines(doc):
            for module in python_modules(argv):
                calls.setdefault(f"m {module}", set()).add(where)
            if argv and argv[0] == "mlops":
                calls.setdefault("s mlops", set()).add(where)
        for app in serve_applications(doc):
            calls.setdefault(f"i {app['import_path']}", set()).add(where)
    calls.setdefault("s mlops", set()).add("pyproject.toml [project.scripts]")
    return calls


def module_file(names: set[str], module: str, main: bool) -> str | None:
    base = module.replace(".", "/")
    candidates = [f"{base}.py", f"{base}/__main__.py"] if main else [f"{base}.py", f"{base}/__init__.py"]
    return next((c for c in candidates if c in names), None)


def assert_importable(names: set[str], wheel: Path, module: str, attr: str | None, main: bool = False) -> None:
    found = module_file(names, module, main)
    assert found, f"{module}: no {'module or __main__' if main else 'module'} in {wheel.name}"
    parts = module.split(".")
    for i in range(1, len(parts)):  # every parent package is a package in the wheel
        assert "/".join(parts[:i]) + "/__init__.py" in names, f"{'.'.join(parts[:i])} is not a package in {wheel.name}"
    if attr:
        with zipfile.ZipFile(wheel) as archive:
            tree = ast.parse(archive.read(found))
        defined = {t.id for n in tree.body if isinstance(n, (ast.Assign, ast.AnnAssign))
                   for t in (n.targets if isinstance(n, ast.Assign) else [n.target]) if isinstance(t, ast.Name)}
        defined |= {n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))}
        assert attr in defined, f"{module}:{attr}: {found} defines no top-level {attr}"


def test_manifests_call_the_known_entry_points():
    """The walk finds what the generated manifests are known to call (guards the walk)."""
    entries = set(called())
    for want in ("m framework.runtime.training", "m framework.runtime.serving.fetch_model", "m framework.runtime.monitor",
                 "m framework.runtime.rag.index", "m framework.runtime.batch", "m framework.runtime.batch.launch",
                 "i framework.runtime.serving.ray_host:app",
                 "i framework.runtime.rag.ray_host:app", "s mlops"):
        assert want in entries, f"{want} not found in the manifests; found {sorted(entries)}"


def test_every_called_module_is_in_the_wheel(wheel):
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
    checked = []
    for entry, where in sorted(called().items()):
        kind, target = entry.split(" ", 1)
        if kind == "s":
            continue  # the console script: test_wheel_carries_the_templates_and_the_cli
        module, _, attr = target.partition(":")
        if module.split(".")[0] != "framework":
            continue  # third-party apps (ray.serve.llm) run in their own images
        try:
            assert_importable(names, wheel, module, attr or None, main=kind == "m")
        except AssertionError as error:
            raise AssertionError(f"{error}\n  called by: {', '.join(sorted(where)[:5])}") from None
        checked.append(target)
    print(f"{len(checked)} entry points in {wheel.name}: {', '.join(checked)}")
    assert checked


def test_runtime_image_containers_only_run_what_the_image_has(wheel):
    """Containers of deploy.image run `python -m framework...` (in the wheel), `mlops`,
    or nothing of their own (KubeRay starts Ray in them)."""
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
    images = {d["deploy"]["image"] for p, d in manifest_documents() if p.name == "recipe.resolved.yaml"}
    assert images, "no recipe.resolved.yaml with deploy.image"
    problems = []
    for path, doc in manifest_documents():
        for node in walk(doc):
            if node.get("image") in images and ("command" in node or "args" in node):
                argv = [str(a) for a in (node.get("command") or []) + (node.get("args") or [])]
                modules = python_modules(argv)
                if not modules and argv[:1] != ["mlops"]:
                    problems.append(f"{path.relative_to(REPO)}: {node.get('name')}: {' '.join(argv)}")
                for module in modules:
                    if not module_file(names, module, main=True):
                        problems.append(f"{path.relative_to(REPO)}: {node.get('name')}: {module} not in the wheel")
    assert problems == []
