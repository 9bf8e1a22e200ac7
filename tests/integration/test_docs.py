"""The README documents what the code offers: every setting, the two commands first."""

from __future__ import annotations

import asyncio
import os
import re
from pathlib import Path

import pytest

from edu_infra.settings import VARIABLES

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_starts_with_the_two_commands() -> None:
    head = README.read_text().splitlines()[:10]
    assert any(line.startswith("make demo") for line in head)
    assert any(line.startswith("make test") for line in head)


def test_readme_documents_every_setting_with_its_default() -> None:
    text = README.read_text()
    for variable in VARIABLES:
        row = next(
            (line for line in text.splitlines() if line.startswith(f"| `{variable.name}`")), None
        )
        assert row is not None, f"{variable.name} is missing from the README's settings table"
        if variable.default is not None:
            assert f"`{variable.default}`" in row, f"{variable.name}: README shows another default"


def _python_blocks() -> list[str]:
    text = README.read_text()
    return [block.split("```", 1)[0] for block in text.split("```python\n")[1:]]


async def test_the_embedding_example_runs() -> None:
    import ast

    block = next(b for b in _python_blocks() if "core = EduCore(" in b and "await" in b)
    code = compile(block, "README.md", "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
    namespace: dict[str, object] = {}
    await eval(code, namespace)
    assert namespace["account"].user.username == "ada"  # type: ignore[attr-defined]


def test_the_hypothesis_example_runs() -> None:
    block = next(b for b in _python_blocks() if "@given" in b)
    namespace: dict[str, object] = {}
    exec(compile(block, "README.md", "exec"), namespace)
    namespace["test_renaming_changes_only_the_name"]()  # type: ignore[operator]


# -- every code sample runs, every name the README imports exists --------------------------


def _blocks_with_markers() -> list[tuple[str, bool]]:
    """(code, is_fragment) of each python block; a fragment follows `<!-- fragment: ... -->`."""
    text = README.read_text()
    found = []
    for before, rest in zip(
        text.split("```python\n")[:-1], text.split("```python\n")[1:], strict=True
    ):
        fragment = before.rstrip().endswith("-->") and "<!-- fragment" in before.rsplit("\n", 2)[-2]
        found.append((rest.split("```", 1)[0], fragment))
    return found


def _imports(code: str) -> list[tuple[str, str | None]]:
    import ast

    tree = ast.parse(code)  # top-level await parses as an expression statement here
    names: list[tuple[str, str | None]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.extend((node.module, alias.name) for alias in node.names)
        elif isinstance(node, ast.Import):
            names.extend((alias.name, None) for alias in node.names)
    return names


def test_every_name_the_readme_imports_is_importable_from_where_it_says() -> None:
    import importlib

    checked = 0
    for code, fragment in _blocks_with_markers():
        try:
            imports = _imports(code)
        except SyntaxError:
            assert fragment, "only a marked fragment may be incomplete Python"
            continue
        for module, name in imports:
            imported = importlib.import_module(module)
            if name is not None and not hasattr(imported, name):
                importlib.import_module(f"{module}.{name}")  # a submodule, or it fails
            checked += 1
    assert checked >= 15


def test_readme_prose_names_resolve() -> None:
    """Dotted names in the README's text (`edu_infra.memory.InMemoryCache`, ...) exist."""
    import importlib
    import re

    text = README.read_text()
    dotted = set(re.findall(r"`((?:edu_domain|edu_infra)(?:\.\w+)+)`", text))
    assert len(dotted) > 20
    for name in sorted(dotted):
        module, _, attr = name.rpartition(".")
        try:
            importlib.import_module(name)
            continue
        except ModuleNotFoundError:
            pass
        assert hasattr(importlib.import_module(module), attr), f"README names {name}"


async def test_every_complete_readme_sample_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import ast

    monkeypatch.chdir(tmp_path)
    for key in [k for k in os.environ if k.startswith("EDU_")]:
        monkeypatch.delenv(key)
    ran = 0
    for code, fragment in _blocks_with_markers():
        if fragment:
            continue
        compiled = compile(code, "README.md", "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
        namespace: dict[str, object] = {"__name__": "readme"}
        result = eval(compiled, namespace)
        if result is not None:
            await result
        for value in namespace.values():  # run the tests a sample defines
            if callable(value) and getattr(value, "__name__", "").startswith("test_"):
                await asyncio.to_thread(value)  # it runs its own event loop
        ran += 1
    assert ran >= 3
    assert "verification mail for n@example.org" in capsys.readouterr().out


def test_the_ports_table_lists_real_methods() -> None:
    import edu_domain.caching
    import edu_domain.ports

    def lookup(name: str) -> object:
        return getattr(edu_domain.ports, name, None) or getattr(edu_domain.caching, name, None)

    rows = [line.split("|") for line in README.read_text().splitlines() if line.startswith("| `")]
    ports = [cells for cells in rows if lookup(cells[1].strip(" `")) is not None]
    assert len(ports) >= 10
    for cells in ports:
        owners = [lookup(cells[1].strip(" `"))]
        owners += [lookup(c) for c in re.findall(r"`([A-Z]\w+)`", cells[2]) if lookup(c)]
        for method in re.findall(r"`(?:async )?([a-z_]\w*)", cells[2]):
            assert any(hasattr(owner, method) for owner in owners), f"{cells[1]}.{method}"


def test_make_docs_builds_the_api_reference(tmp_path: Path) -> None:
    import shlex
    import subprocess
    import sys

    makefile = (README.parent / "Makefile").read_text()
    modules = shlex.split(re.search(r"^DOC_MODULES\s*:?=\s*(.+)$", makefile, re.M).group(1))  # type: ignore[union-attr]
    subprocess.run(
        [sys.executable, "-m", "pdoc", "-o", str(tmp_path), *modules],
        check=True,
        capture_output=True,
    )
    ports = (tmp_path / "edu_domain" / "ports.html").read_text()
    for name in (
        "Notifier",
        "send_email_verification",
        "MailSender",
        "UnitOfWork",
        "PasswordHasher",
    ):
        assert name in ports
    assert (tmp_path / "edu_infra" / "mail.html").exists()
    assert (
        "skip_edu_tables" in (tmp_path / "edu_infra" / "sqlalchemy" / "versioning.html").read_text()
    )
