"""Check, before anything starts, that the generated-config folder is one the PBX can share.

ccbridge writes ``queues.conf`` into ``CCBRIDGE_ASTERISK_GENERATED_DIR`` and Asterisk
includes it from there. A relative path depends on the directory ccbridge happens to be
started from, which is how skill groups silently never reached the PBX (issue 18); in prod
mode the path must therefore be absolute. The folder must exist (dev mode creates it) and be
writable by ccbridge.
"""

from __future__ import annotations

import os
from pathlib import Path

SETTING = "CCBRIDGE_ASTERISK_GENERATED_DIR"


class GeneratedDirError(ValueError):
    """Raised when the generated-config folder cannot be used; the message says how to fix it."""


def check_generated_dir(path: Path, *, require_absolute: bool, create: bool) -> Path:
    """Return the folder as an absolute path, or raise :class:`GeneratedDirError`."""
    if require_absolute and not path.is_absolute():
        raise GeneratedDirError(
            f"{SETTING} must be an absolute path (got {str(path)!r}): the PBX includes "
            "queues.conf from a fixed place, not from ccbridge's working directory"
        )
    folder = path.absolute()
    if create and not folder.exists():
        try:
            folder.mkdir(parents=True)
        except OSError as exc:
            raise GeneratedDirError(f"{SETTING}: cannot create {folder}: {exc.strerror}") from exc
    if not folder.is_dir():
        raise GeneratedDirError(
            f"{SETTING}: {folder} does not exist or is not a directory; create it (shared with "
            "the PBX, which includes queues.conf from it)"
        )
    if not os.access(folder, os.W_OK | os.X_OK):
        raise GeneratedDirError(f"{SETTING}: {folder} is not writable by this user")
    return folder
