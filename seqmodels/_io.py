"""Saving and loading: one ``.npz`` file holding arrays plus JSON metadata.

Never pickle: files are read with ``allow_pickle=False`` and the metadata is a
JSON string stored as a unicode array. Writes go to a temporary file that is
renamed into place, so a crash never leaves a half-written file.
"""

from __future__ import annotations

import io
import json
import os
import tempfile
import zipfile
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
