"""Branch names as git allows them (git-check-ref-format), so a bad one is refused before any fetch."""

from __future__ import annotations

import re

from chalicelib import errors

_FORBIDDEN_CHARACTERS = re.compile(r"[\x00-\x20~^:?*\[\\\x7f]")
_FORBIDDEN_SEQUENCES = ("..", "//", "@{")


def check_branch_name(branch: str, *, field: str = "branch") -> str:
    problem = _problem(branch)
    if problem:
        raise errors.InvalidInput.field(field, problem)
    return branch


def _problem(branch: str) -> str | None:
    if not 1 <= len(branch) <= 255:
        return "must be 1 to 255 characters long"
    if _FORBIDDEN_CHARACTERS.search(branch):
        return "must not contain spaces, control characters or any of ~ ^ : ? * [ \\"
    if any(sequence in branch for sequence in _FORBIDDEN_SEQUENCES):
        return "must not contain '..', '//' or '@{'"
    if branch.startswith(("/", "-", ".")) or branch.endswith(("/", ".", ".lock")) or branch == "@":
        return "is not a valid git branch name"
    if any(part.startswith(".") or part.endswith(".lock") for part in branch.split("/")):
        return "is not a valid git branch name"
    return None
