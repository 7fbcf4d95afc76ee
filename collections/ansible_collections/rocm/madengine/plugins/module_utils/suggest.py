"""'did you mean' suggestions for a mistyped name."""

from __future__ import annotations

import difflib
from typing import Iterable, List


def close_matches(word: str, choices: Iterable[str], n: int = 1, cutoff: float = 0.8) -> List[str]:
    """The choices most like `word`, best first (distinct, at most n)."""
    return difflib.get_close_matches(word, list(dict.fromkeys(choices)), n=n, cutoff=cutoff)


def did_you_mean(word: str, choices: Iterable[str], n: int = 1, cutoff: float = 0.8) -> str:
    """ "did you mean 'a'?" / "did you mean 'a' or 'b'?"; '' when nothing is close."""
    found = [f"'{match}'" for match in close_matches(word, choices, n, cutoff)]
    if not found:
        return ""
    shown = found[0] if len(found) == 1 else ", ".join(found[:-1]) + " or " + found[-1]
    return f"did you mean {shown}?"
