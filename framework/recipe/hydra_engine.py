"""Hydra's composition engine, called without a Hydra application around it.

`hydra.compose()` also builds Hydra's own application config (logging, launcher,
sweeper, output dirs: 9 more config files) and needs `GlobalHydra` initialised. A
recipe needs neither, so this calls the same loader steps `compose()` runs
(parse overrides -> defaults list -> merge -> apply overrides) without prepending
Hydra's config: half the time, and no global Hydra state is touched, so calls are
independent and safe inside a Hydra app. tests/unit/test_compose.py checks the
result equals `hydra.compose()` for every example, env and override set.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

# The composition semantics recipes are written for (`_self_` order, defaults rules).
VERSION_BASE = "1.3"


class HydraComposition:
    """One composition: `defaults` (merge order) first, then `merge()` for the config."""

    def __init__(self, config_dir: Path, config_name: str, overrides: Sequence[str]):
        from hydra._internal.config_loader_impl import ConfigLoaderImpl
        from hydra._internal.defaults_list import create_defaults_list
        from hydra._internal.utils import create_config_search_path
        from hydra.types import RunMode

        with _version_base(VERSION_BASE):
            self._loader = ConfigLoaderImpl(config_search_path=create_config_search_path(str(config_dir)))
            parsed, self._repo = self._loader._parse_overrides_and_create_caching_repo(config_name, list(overrides))
            self._loader.validate_sweep_overrides_legal(overrides=parsed, run_mode=RunMode.RUN, from_shell=True)
            self._defaults_list = create_defaults_list(
                repo=self._repo, config_name=config_name, overrides_list=parsed, prepend_hydra=False, skip_missing=False
            )
        self.defaults: list[Any] = list(self._defaults_list.defaults)  # ResultDefault, in merge order

    def merge(self) -> Any:
        """The composed DictConfig: files merged in order, then value overrides applied."""
        from hydra._internal.config_loader_impl import ConfigLoaderImpl
        from omegaconf import OmegaConf

        with _version_base(VERSION_BASE):
            cfg = self._loader._compose_config_from_defaults_list(defaults=self.defaults, repo=self._repo)
            OmegaConf.set_struct(cfg, True)  # as compose(): overriding a missing key needs '+'
            ConfigLoaderImpl._apply_overrides_to_config(self._defaults_list.config_overrides, cfg)
            OmegaConf.set_struct(cfg, False)
        return cfg

    def files(self) -> list[Path] | None:
        """The files Hydra read (each config it loaded from a folder), for the parse cache;
        None when this Hydra keeps no record of them."""
        cache = getattr(self._repo, "cache", None)
        if not isinstance(cache, dict):
            return None
        found = []
        for key, result in cache.items():
            if result is None:
                continue
            if not str(result.path).startswith("file://"):  # Hydra's own packaged configs
                continue
            name = str(key).removeprefix("config_path=")
            found.append(Path(str(result.path).removeprefix("file://")) / (name if name.endswith(".yaml") else f"{name}.yaml"))
        return found


@contextmanager
def _version_base(base: str) -> Iterator[None]:
    from hydra import version

    instance = version.VersionBase.instance()
    saved = instance.getbase()
    version.setbase(base)
    try:
        yield
    finally:
        instance.version_base = saved
