"""The package metadata a PyPI user sees, and what the wheel must carry.

`make build` (run by `.ci/run`) builds the sdist and wheel and runs `twine check --strict`;
these tests keep the metadata and the package data honest between builds.
"""

from __future__ import annotations

import fnmatch
import re
import tomllib
from pathlib import Path

from edu_infra.extras import MODULES_OF_EXTRA

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
PROJECT = PYPROJECT["project"]


def test_the_metadata_has_urls_classifiers_and_a_typed_marker() -> None:
    assert {"Homepage", "Repository", "Issues", "Changelog"} <= set(PROJECT["urls"])
    assert all(url.startswith("https://") for url in PROJECT["urls"].values())
    classifiers = set(PROJECT["classifiers"])
    assert "Typing :: Typed" in classifiers
    assert "Programming Language :: Python :: 3.11" in classifiers
    assert (ROOT / "src/edu_domain/py.typed").exists() and (
        ROOT / "src/edu_infra/py.typed"
    ).exists()


def test_the_changelog_follows_keep_a_changelog_and_names_this_version() -> None:
    text = (ROOT / "CHANGELOG.md").read_text()
    assert "keepachangelog.com" in text and "semver.org" in text
    versions = re.findall(r"^## \[([^\]]+)\]", text, re.M)
    assert versions[0] == "Unreleased" and PROJECT["version"] in versions
    for heading in re.findall(r"^### (\w+)", text, re.M):
        assert heading in {"Added", "Changed", "Deprecated", "Removed", "Fixed", "Security"}


def test_every_extra_the_code_names_exists() -> None:
    extras = set(PROJECT["optional-dependencies"])
    assert set(MODULES_OF_EXTRA) <= extras
    assert {"smtp", "otel"} <= extras


def test_the_wheel_carries_every_data_file_of_the_packages() -> None:
    globs = PYPROJECT["tool"]["setuptools"]["package-data"]
    for package in ("edu_domain", "edu_infra"):
        base = ROOT / "src" / package
        for path in base.rglob("*"):
            if (
                path.is_dir()
                or path.suffix in (".py", ".pyc", ".md")
                or "__pycache__" in path.parts
            ):
                continue
            relative = path.relative_to(base).as_posix()
            assert any(fnmatch.fnmatch(relative, g) for g in globs[package]), relative
    for version in (ROOT / "src/edu_infra/migrations/versions").glob("*.py"):
        assert fnmatch.fnmatch(f"migrations/versions/{version.name}", "migrations/versions/*.py")


def test_ci_builds_and_checks_the_distribution() -> None:
    ci = (ROOT / ".ci/run").read_text()
    makefile = (ROOT / "Makefile").read_text()
    assert "make build" in ci
    assert "-m build" in makefile and "twine check --strict" in makefile
