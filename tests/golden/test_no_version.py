"""The framework version lives in manifest.json only: a release rewrites no artifact."""

from __future__ import annotations

import json

from framework import __version__
from tests.conftest import REPO


def test_only_the_manifests_name_the_framework_version() -> None:
    named = f"mlops {__version__}"
    files = [p for root in ("generated", "tests/golden", ".github") for p in (REPO / root).rglob("*")
             if p.is_file() and p.suffix in (".yaml", ".yml", ".json", ".pbtxt")]
    assert len(files) > 300
    assert [p for p in files if named in p.read_text(encoding="utf-8")] == []
    manifests = list((REPO / "generated").rglob("manifest.json"))
    assert manifests and all(json.loads(p.read_text())["framework_version"] == __version__ for p in manifests)
