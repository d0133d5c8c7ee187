"""`mlops lineage RECIPE [--version N]`: for each registered version, the data it was
trained on (uri, sha256, git revision, DVC md5: the `mlops.data.*` tags training
records) -> its MLflow run -> the model version -> its aliases -> where it is served
(the champion answers requests; a candidate in a running rollout shares them; the local
Triton model repository holds the file). Reads the registry and the rollout record;
nothing here prints or writes."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from framework.api.recipes import as_project, load_recipe
from framework.api.results import Result
from framework.errors import MlopsError, Problem
from framework.project import Project

MOST_VERSIONS = 20  # without --version: the newest ones


@dataclass(frozen=True)
class VersionLineage:
    version: str
    run_id: str
    data: dict[str, str]  # the mlops.data.* tags without their prefix: uri, sha256, rev, dvc_md5
    recipe_hash: str | None
    aliases: tuple[str, ...]
    served: tuple[str, ...]  # where it answers requests, one line each


@dataclass(frozen=True)
class LineageResult(Result):
    recipe: str
    env: str
    registered_model: str
    tracking_uri: str
    versions: tuple[VersionLineage, ...]

    def lines(self) -> list[str]:
        out = [f"{self.recipe} ({self.env}): registered model '{self.registered_model}' in {self.tracking_uri}"]
        for v in self.versions:
            data = v.data
            revision = data.get("rev") or "not in git"
            dvc = f", DVC md5 {data['dvc_md5']}" if data.get("dvc_md5") else ""
            sha = data.get("sha256", "not recorded (trained before mlops recorded data versions)")
            feast = ([f"  features: Feast view {data['feast']}, joined table sha256 {data.get('table_sha256', '?')}"]
                     if data.get("feast") else [])
            out += [
                f"version {v.version}",
                f"  data:    {data.get('uri', '?')} sha256 {sha} (rev {revision}{dvc})",
                *feast,
                f"  run:     {v.run_id} (recipe hash {v.recipe_hash or '?'})",
                f"  aliases: {', '.join(v.aliases) or 'none'}",
                *[f"  served:  {line}" for line in v.served or ("not served",)],
            ]
        return out


def lineage(recipe: str, version: str | None = None, env: str | None = None,
            project: Project | Path | None = None) -> LineageResult:
    from framework.contracts.registry import ALIAS_CANDIDATE, ALIAS_CHAMPION, ROLLOUT_ALIASES
    from framework.contracts.rollout_record import load_record, record_path
    from framework.contracts.triton import model_name
    from framework.runtime import tracking
    from framework.runtime.training.data_version import version_data

    proj = as_project(project)
    r = load_recipe(recipe, env, (), proj).recipe
    uri = tracking.tracking_uri(r, proj.state_dir)
    name = r.registered_model
    if not tracking.has_store(uri):
        raise MlopsError([Problem(None, "registered_model", f"no version of '{name}' is registered in {uri}: "
                                                            f"run `mlops apply {r.name}` first")])
    found = tracking.aliases(name, uri=uri)
    versions = _versions(tracking.client(uri), name, uri, version)
    record = load_record(record_path(proj.state_dir, r.name, r.environment))
    repository = proj.state_dir / "model_repository" / model_name(r)
    entries = []
    for mv in versions:
        aliases = tuple(a for a in ROLLOUT_ALIASES if found.get(a) == str(mv.version))
        served = []
        if ALIAS_CHAMPION in aliases:
            served.append(f"champion: answers requests that name no version ({r.serving.backend}, `mlops serve {r.name}`)")
        if ALIAS_CANDIDATE in aliases and ALIAS_CHAMPION not in aliases and record is not None \
                and record.candidate == str(mv.version) and record.status in ("running", "paused"):
            served.append(f"candidate in a {record.strategy} rollout, {record.weight:g}% of traffic ({record.status})")
        if (repository / str(mv.version)).is_dir():
            served.append(f"model file in {repository / str(mv.version)}")
        data = version_data(mv.tags)
        entries.append(VersionLineage(str(mv.version), mv.run_id, data, mv.tags.get(tracking.TAG_HASH), aliases, tuple(served)))
    return LineageResult(r.name, r.environment, name, uri, tuple(entries))


def _versions(client, name: str, uri: str, version: str | None):
    from mlflow.exceptions import MlflowException

    try:
        if version is not None:
            return [client.get_model_version(name, str(version))]
        found = client.search_model_versions(f"name='{name}'")
    except MlflowException:
        if version is not None:
            raise MlopsError([Problem(None, "--version", f"version {version} of '{name}' is not in {uri}")]) from None
        found = None
    if not found:
        raise MlopsError([Problem(None, "registered_model", f"no version of '{name}' is registered in {uri}: "
                                                            f"run `mlops apply` first")])
    return sorted(found, key=lambda mv: int(mv.version), reverse=True)[:MOST_VERSIONS]
