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
