"""The README documents what the code offers: every setting, the two commands first."""

from __future__ import annotations

from pathlib import Path

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
