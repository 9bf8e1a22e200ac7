"""The docs name only modules that exist: every `something.py` in the module tables of the
READMEs, and every dotted `edu_domain.*` / `edu_infra.*` module they mention."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", ROOT / "src/edu_infra/sqlalchemy/README.md"]
_FILE = re.compile(r"`([a-z_]+)\.py`")
_DOTTED = re.compile(r"`((?:edu_domain|edu_infra)(?:\.[a-z_]+)+)")


def _module_exists(dotted: str) -> bool:
    """A module, or an attribute of one (`edu_infra.caching.cache_result`)."""
    parts = dotted.split(".")
    for end in range(len(parts), 0, -1):
        try:
            module = importlib.import_module(".".join(parts[:end]))
        except ImportError:
            continue
        target: object = module
        for name in parts[end:]:
            if not hasattr(target, name):
                return False
            target = getattr(target, name)
        return True
    return False


def test_every_module_file_named_in_the_sql_adapter_docs_exists() -> None:
    doc = DOCS[1]
    named = set(_FILE.findall(doc.read_text()))
    files = {p.stem for p in doc.parent.glob("*.py")}
    assert named, "the module table is missing"
    assert named <= files | {"0001_initial", "0002_signed_tenant"}, named - files


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_dotted_module_named_in_the_docs_exists(doc: Path) -> None:
    missing = sorted(
        {name for name in _DOTTED.findall(doc.read_text()) if not _module_exists(name)}
    )
    assert missing == []
