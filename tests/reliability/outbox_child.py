"""The process the kill test (`test_outbox_kill.py`) kills, configured by its EDU_* settings.

`python -m tests.reliability.outbox_child commit-then-hang MARKER`: start edu-core as a
service does (`open_core`, relay running), register a user in a transaction whose
after-commit callback writes MARKER and then hangs: the commit happened, its mail was not
dispatched. The test kills the process there.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from edu_domain.services import NewUser, Scope
from edu_infra.container import open_core

EMAIL = "killed@example.org"


async def commit_then_hang(marker: Path) -> None:
    async with open_core() as (core, _):
        org = await core.organizations.create("Kill Test School")

        async def hang() -> None:
            await asyncio.to_thread(marker.write_text, str(org.id))
            await asyncio.Event().wait()  # forever: the test kills us here

        scope = Scope.system(org.id)
        async with core.transaction(scope) as tx:
            await tx.users.register(
                scope,
                NewUser(email=EMAIL, username="killed", password="correct horse battery"),
            )
            tx.after_commit(hang)


def main() -> None:
    mode = sys.argv[1]
    if mode == "commit-then-hang":
        asyncio.run(commit_then_hang(Path(sys.argv[2])))
    else:
        raise SystemExit(f"unknown mode {mode}")


if __name__ == "__main__":
    main()
