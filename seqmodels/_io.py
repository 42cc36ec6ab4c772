"""Files: ``.npz`` archives with JSON metadata, and folders written all or nothing.

Never pickle: files are read with ``allow_pickle=False`` and the metadata is a
JSON string stored as a unicode array. Writes go to a temporary file that is
renamed into place, so a crash never leaves a half-written file; a folder of
files (a report) is built in a staging folder and swapped in whole
(:func:`write_folder`), under a lock that keeps two runs from writing it at once.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import tempfile
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

_METADATA_KEY = "__metadata__"


class FileProblemError(ValueError, OSError):
    """A path that cannot be written or read as asked, named in the message.

    A ``ValueError`` (bad input, as everywhere in the package) and an ``OSError``
    (what file code usually catches).
    """


def check_path(path, what: str = "path") -> Path:
    """``path`` as a Path; ``ValueError`` unless it is a non-empty str or os.PathLike."""
    if not isinstance(path, (str, os.PathLike)):
        raise ValueError(f"{what} must be a str or os.PathLike, got {path!r}")
    if str(path) == "":
        raise ValueError(f"{what} must name a file, got an empty string")
    return Path(path)


def _why_not_writable(path: Path) -> str:
    """Why a file cannot be created at ``path``: the folder, not a temporary name."""
    folder = path.parent
    if not folder.exists():
        return f"its folder {str(folder)!r} does not exist"
    if not folder.is_dir():
        return f"{str(folder)!r} is not a folder"
    if path.is_dir():
        return "it is a folder"
    return f"the folder {str(folder)!r} does not accept new files"


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` through a temporary file in the same folder, then rename."""
    path = check_path(path)
    try:
        handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    except OSError as err:
        raise _cannot_write(path, err) from None
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
        # mkstemp makes the file private (0600); give it the mode open() would.
        os.chmod(temporary, 0o666 & ~_current_umask())
        os.replace(temporary, path)
    except BaseException as err:
        Path(temporary).unlink(missing_ok=True)
        if isinstance(err, OSError):  # name the path asked for, not the temporary file
            raise _cannot_write(path, err) from None
        raise
    return path


def _cannot_write(path: Path, err: OSError) -> FileProblemError:
    return FileProblemError(f"cannot write {str(path)!r}: {_why_not_writable(path)} "
                            f"({err.strerror})")


def save_npz(path: str | os.PathLike, kind: str, arrays: dict[str, np.ndarray],
             metadata: dict) -> Path:
    """Save ``arrays`` and JSON ``metadata`` tagged with ``kind`` to ``path`` atomically.

    The ``.npz`` suffix is added when missing. Returns the path written.
    ``ValueError`` (a :class:`FileProblemError`) naming ``path`` when it cannot be written.
    """
    path = check_path(path)
    if path.suffix != ".npz":
        path = path.with_name(path.name + ".npz")
    header = json.dumps({"kind": kind, **metadata})
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays, **{_METADATA_KEY: np.array(header)})
    return atomic_write_bytes(path, buffer.getvalue())


def load_npz(path: str | os.PathLike, kind: str,
             required: tuple[str, ...]) -> tuple[dict[str, np.ndarray], dict]:
    """Load a file written by :func:`save_npz` and check it holds a ``kind``.

    Raises
    ------
    ValueError
        If the file is missing, a folder, unreadable, corrupt, not an ``.npz``, of
        another kind, or lacks one of the ``required`` arrays.
    """
    path = check_path(path)
    if path.is_dir():
        raise FileProblemError(f"{path} is a folder, not a saved {kind}")
    if not path.exists():
        raise FileProblemError(f"{path}: no such file")
    try:
        with open(path, "rb"):
            pass
    except OSError as err:
        raise FileProblemError(f"cannot read {path}: {err.strerror}") from None
    if not zipfile.is_zipfile(path):
        raise ValueError(f"{path} is not an .npz archive; it is not a saved {kind}")
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {name: archive[name] for name in archive.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as err:
        raise ValueError(f"{path} is not a readable .npz file: {err}") from None
    try:
        metadata = json.loads(str(arrays.pop(_METADATA_KEY)))
    except (KeyError, json.JSONDecodeError):
        metadata = None
    if not isinstance(metadata, dict):
        raise ValueError(f"{path} has no seqmodels metadata; it is not a saved {kind}")
    if metadata.get("kind") != kind:
        raise ValueError(f"{path} holds a {metadata.get('kind')!r}, not a {kind}")
    missing = [name for name in required if name not in arrays]
    if missing:
        raise ValueError(f"{path} is a corrupt {kind}: missing arrays {missing}")
    return arrays, metadata


# --------------------------------------------------------------------------- whole folders

#: Folders whose lock this process holds: how many nested holds each.
_HELD_LOCKS: dict[Path, int] = {}


def _lock_path(folder: Path) -> Path:
    return folder.parent / f".{folder.name}.lock"


@contextmanager
def folder_lock(folder: str | os.PathLike) -> Iterator[None]:
    """Hold the exclusive right to write ``folder`` for the block; refuse if another process has it.

    The lock is an ``flock`` on a hidden file beside the folder
    (``.{name}.lock``), released by the system when the holder exits or dies,
    so a crashed run never leaves a stale lock. Nested holds in one process are
    allowed (the CLI holds it for a whole run, :func:`write_folder` again).

    Raises
    ------
    FileProblemError
        If another live process holds it (naming its pid), or the lock file
        cannot be created.
    """
    folder = Path(os.path.abspath(check_path(folder, "folder")))
    stream = None if folder in _HELD_LOCKS else _acquire(folder)
    _HELD_LOCKS[folder] = _HELD_LOCKS.get(folder, 0) + 1
    try:
        yield
    finally:
        _HELD_LOCKS[folder] -= 1
        if stream is not None:
            del _HELD_LOCKS[folder]
            stream.close()  # releases the flock


def _acquire(folder: Path):
    import fcntl  # POSIX only; imported here so the module loads everywhere

    lock = _lock_path(folder)
    try:
        lock.parent.mkdir(parents=True, exist_ok=True)
        stream = open(lock, "a+")  # stays open while held: closing it releases the lock
    except OSError as err:
        raise _cannot_write(folder, err) from None
    try:
        fcntl.flock(stream, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        stream.seek(0)
        holder = stream.read().strip() or "unknown"
        stream.close()
        raise FileProblemError(f"another run (pid {holder}) is writing {str(folder)!r}; wait "
                               "for it to finish or choose another folder") from None
    stream.seek(0)
    stream.truncate()
    stream.write(str(os.getpid()))
    stream.flush()
    return stream


def check_replaceable(folder: str | os.PathLike, expected: set[str],
                      name: str = "folder") -> Path:
    """``folder`` as a Path if :func:`write_folder` may replace it, else ``FileProblemError``.

    A folder may be replaced when it is missing, empty, or holds nothing but
    names from ``expected`` (a previous run's files): replacing a folder of
    someone's other files would delete them. ``name`` is the caller's argument,
    named when ``folder`` is not a path at all.
    """
    folder = check_path(folder, name)
    if folder.exists() and not folder.is_dir():
        raise FileProblemError(f"{str(folder)!r} is a file, not a folder")
    if folder.is_dir():
        foreign = sorted(p.name for p in folder.iterdir() if p.name not in expected)
        if foreign:
            shown = ", ".join(foreign[:5]) + (" ..." if len(foreign) > 5 else "")
            raise FileProblemError(f"{str(folder)!r} holds files that this run did not write "
                                   f"({shown}); choose a new or empty folder")
    return folder


def check_writable_folder(folder: str | os.PathLike, expected: set[str],
                          name: str = "folder") -> Path:
    """:func:`check_replaceable`, and the folder's parent (created if missing) takes new
    files, as the staging folder of :func:`write_folder` will be: a folder that cannot
    be written is refused before anything is made to fill it.

    Raises
    ------
    FileProblemError
        As :func:`check_replaceable`, or naming the parent that takes no files.
    """
    folder = check_replaceable(folder, expected, name)
    check_parent_takes_files(folder)
    return folder


def check_parent_takes_files(path: Path) -> None:
    """Create ``path``'s parent folder if missing and check it takes new files.

    Raises
    ------
    FileProblemError
        Naming the parent, and why the system refused.
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path.parent):
            pass
    except OSError as err:
        raise FileProblemError(f"cannot create files in {str(path.parent)!r} "
                               f"({err.strerror})") from None


def write_folder(folder: str | os.PathLike, files: dict[str, bytes],
                 expected: set[str] | None = None) -> list[Path]:
    """Write ``files`` (name -> bytes) as the whole content of ``folder``, all or nothing.

    The files go into a staging folder beside ``folder``, which then takes its
    place: an interrupted or failed write leaves the previous content as it
    was, and no reader ever sees files of two different writes together. The
    swap is two renames (old folder aside, staging in) and the old folder is
    then deleted; between the renames the folder is briefly absent, never
    mixed. Holds :func:`folder_lock` meanwhile.

    Parameters
    ----------
    folder : str or os.PathLike
        Created with its parents if missing.
    files : dict of str to bytes
        Plain file names (no folders).
    expected : set of str, optional
        Names an existing folder may hold to be replaced (see
        :func:`check_replaceable`); default the names in ``files``.

    Returns
    -------
    list of pathlib.Path
        The paths of the files, in ``files`` order.
    """
    folder = check_replaceable(folder, set(files) if expected is None else expected)
    with folder_lock(folder):
        try:
            folder.parent.mkdir(parents=True, exist_ok=True)
            staging = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}.staging-"))
        except OSError as err:
            raise _cannot_write(folder, err) from None
        try:
            for name, data in files.items():
                (staging / name).write_bytes(data)
            os.chmod(staging, 0o777 & ~_current_umask())  # mkdtemp makes it private
            _swap_in(staging, folder)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
    return [folder / name for name in files]


def _swap_in(staging: Path, folder: Path) -> None:
    if not folder.exists():
        os.rename(staging, folder)
        return
    previous = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}.previous-"))
    os.rename(folder, previous / folder.name)
    os.rename(staging, folder)
    shutil.rmtree(previous, ignore_errors=True)
