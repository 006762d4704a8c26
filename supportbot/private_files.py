"""Owner-only files and directories: the data directory, the database and the secret key.

They hold customers' questions, answers and credentials, so nobody but the user running the bot
may read them, whatever the umask: directories are made 0700 and files 0600 with the mode
given at creation (no window in which they are readable) and set again afterwards (a umask
can only remove bits, but an older version may have left them looser).
"""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path

_DIR_MODE = 0o700
_FILE_MODE = 0o600


def private_directory(path: Path, *, tighten: bool = True) -> Path:
    """Create ``path`` (and missing parents, also owner-only) as a 0700 directory.

    ``tighten``: also take group and other access away from an existing ``path`` (the
    product's own data directory); False leaves an existing directory alone (a directory
    the user chose for a database file, such as their home).
    """
    missing: list[Path] = []
    current = path
    while not current.exists():
        missing.append(current)
        if current.parent == current:
            break
        current = current.parent
    for directory in reversed(missing):
        with contextlib.suppress(FileExistsError):  # another process made it meanwhile
            directory.mkdir(mode=_DIR_MODE)
            os.chmod(directory, _DIR_MODE)
    if tighten and not missing:
        _tighten(path, _DIR_MODE)
    return path


def private_file(path: Path) -> Path:
    """Create ``path`` empty as a 0600 file if it is missing; make an existing one 0600."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, _FILE_MODE)
    except FileExistsError:
        _tighten(path, _FILE_MODE)
    else:
        os.close(fd)
        os.chmod(path, _FILE_MODE)
    return path


def tighten_if_present(path: Path) -> None:
    """Make an existing file 0600 (SQLite's -wal and -shm files, made by SQLite itself)."""
    with contextlib.suppress(FileNotFoundError):
        _tighten(path, _FILE_MODE)


def _tighten(path: Path, mode: int) -> None:
    current = stat.S_IMODE(path.stat().st_mode)
    if current & 0o077:
        with contextlib.suppress(PermissionError):  # not ours: nothing we may change
            os.chmod(path, current & ~0o077 & 0o7777 | (mode & 0o700))
