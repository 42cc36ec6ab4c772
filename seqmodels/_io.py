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


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` through a temporary file in the same folder, then rename."""
    path = Path(path)
    handle, temporary = tempfile.mkstemp(dir=path.parent or ".", prefix=f".{path.name}.")
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
        # mkstemp makes the file private (0600); give it the mode open() would.
        os.chmod(temporary, 0o666 & ~_current_umask())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


def save_npz(path: str | os.PathLike, kind: str, arrays: dict[str, np.ndarray],
             metadata: dict) -> Path:
    """Save ``arrays`` and JSON ``metadata`` tagged with ``kind`` to ``path`` atomically.

    The ``.npz`` suffix is added when missing. Returns the path written.
    """
    path = Path(path)
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
        If the file is missing, corrupt, not an ``.npz``, of another kind, or
        lacks one of the ``required`` arrays.
    """
    if not isinstance(path, (str, os.PathLike)):
        raise ValueError(f"path must be a str or os.PathLike, got {path!r}")
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: no such file")
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
