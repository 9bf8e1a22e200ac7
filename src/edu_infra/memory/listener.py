"""A commit listener that remembers what it was told, for assertions in tests."""

from __future__ import annotations

from collections.abc import Sequence

from attrs import define, field

from edu_domain.ports import Change


@define
class RecordingCommitListener:
    """Keeps the changes of each commit, one list per commit."""

    commits: list[list[Change]] = field(factory=list)
    #: raised after recording, to test that a failing listener is only logged
    failure: Exception | None = None

    async def committed(self, changes: Sequence[Change]) -> None:
        self.commits.append(list(changes))
        if self.failure is not None:
            raise self.failure

    @property
    def changes(self) -> list[Change]:
        """Every change of every commit, in order."""
        return [change for commit in self.commits for change in commit]

    def clear(self) -> None:
        self.commits.clear()
