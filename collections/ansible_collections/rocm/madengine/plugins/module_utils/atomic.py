"""Replacing a file in one step: readers see the old or the new content, never a part, and an interrupted or
failed write leaves the old file and no temporary one."""

from __future__ import annotations

import contextlib
import os
import tempfile
from typing import IO, Iterator


@contextlib.contextmanager
def replacing(path: str, mode: int = 0o644, newline: str | None = None) -> Iterator[IO[str]]:
    """Write the new content of `path` into the yielded handle; it replaces `path` when the block ends."""
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=directory, prefix="." + os.path.basename(path) + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline=newline) as handle:
            yield handle
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
