"""GitDatastore alone: each write is a commit, and no raw driver does that job more simply.

A hand-written dulwich commit (blob, trees, commit object, ref update) would
be a second implementation of the store rather than a baseline, so this
group reports absolute figures and the size trend only.
"""

from __future__ import annotations

import shutil

from ..subject import Context, StoreSubject, Subject, Unavailable


def git_store(ctx: Context) -> Subject:
    try:
        from datastore.git import GitDatastore
    except ImportError as exc:
        raise Unavailable(f"datastore.git: {exc}") from exc
    path = ctx.scratch("git-store") / "repo"
    return StoreSubject("GitDatastore", GitDatastore(str(path), author="bench <bench@localhost>"),
                        label="bare repository, one commit per put and per bulk call",
                        cleanup=lambda: shutil.rmtree(path.parent, ignore_errors=True))
