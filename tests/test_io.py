"""Atomic writes and the .npz + JSON file format shared by samples, models and reports."""

import os
import stat

import numpy as np
import pytest

from seqmodels._io import atomic_write_bytes, load_npz, save_npz


def test_atomic_write_gives_the_usual_file_mode(tmp_path):
    mask = os.umask(0o022)
    try:
        path = atomic_write_bytes(tmp_path / "report.md", b"text")
    finally:
        os.umask(mask)
    assert path.read_bytes() == b"text"
    assert stat.S_IMODE(path.stat().st_mode) == 0o644


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    path = atomic_write_bytes(tmp_path / "metrics.json", b"old")

    with pytest.raises(TypeError):
        atomic_write_bytes(path, object())  # not bytes: the write fails midway
    assert path.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["metrics.json"]


def test_npz_round_trip_and_kind_check(tmp_path):
    path = save_npz(tmp_path / "thing", "Thing", {"a": np.arange(3)}, {"note": "x"})
    assert path.suffix == ".npz"
    arrays, meta = load_npz(path, "Thing", ("a",))
    np.testing.assert_array_equal(arrays["a"], np.arange(3))
    assert meta == {"kind": "Thing", "note": "x"}
    with pytest.raises(ValueError, match="holds a 'Thing', not a Other"):
        load_npz(path, "Other", ())
    with pytest.raises(ValueError, match="missing arrays"):
        load_npz(path, "Thing", ("a", "b"))


def test_metadata_that_is_not_a_json_object_is_refused(tmp_path):
    path = tmp_path / "list.npz"
    np.savez(path, __metadata__=np.array("[1, 2]"))
    with pytest.raises(ValueError, match="no seqmodels metadata; it is not a saved Thing"):
        load_npz(path, "Thing", ())


@pytest.mark.parametrize(("path", "message"), [
    (None, "path must be a str or os.PathLike, got None"),
    ("", "path must name a file"),
    (3, "path must be a str or os.PathLike"),
])
def test_save_refuses_what_is_not_a_path(path, message):
    with pytest.raises(ValueError, match=message):
        save_npz(path, "Thing", {"a": np.arange(2)}, {})


def test_save_into_a_missing_folder_names_the_folder_not_a_temporary(tmp_path):
    target = tmp_path / "missing" / "dir" / "x.npz"
    with pytest.raises(OSError, match=r"folder '.*missing/dir' does not exist") as caught:
        save_npz(target, "Thing", {"a": np.arange(2)}, {})
    assert isinstance(caught.value, ValueError)
    assert ".x.npz." not in str(caught.value)


def test_save_over_a_folder_names_the_path(tmp_path):
    (tmp_path / "x.npz").mkdir()
    with pytest.raises(ValueError, match=r"x\.npz': it is a folder"):
        save_npz(tmp_path / "x.npz", "Thing", {"a": np.arange(2)}, {})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.npz"]


def test_save_into_a_folder_that_refuses_files(tmp_path, monkeypatch):
    import tempfile

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(tempfile, "mkstemp", refuse)
    with pytest.raises(ValueError, match=r"does not accept new files \(Permission denied\)"):
        save_npz(tmp_path / "x.npz", "Thing", {"a": np.arange(2)}, {})


def test_load_names_a_folder_a_missing_file_and_an_unreadable_one(tmp_path, monkeypatch):
    with pytest.raises(ValueError, match="is a folder, not a saved Thing"):
        load_npz(tmp_path, "Thing", ())
    with pytest.raises(ValueError, match="no such file"):
        load_npz(tmp_path / "absent.npz", "Thing", ())
    path = save_npz(tmp_path / "x", "Thing", {"a": np.arange(2)}, {})
    real_open = open

    def unreadable(file, *args, **kwargs):
        if str(file) == str(path):
            raise PermissionError(13, "Permission denied")
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr("builtins.open", unreadable)
    with pytest.raises(ValueError, match=r"cannot read .*x\.npz: Permission denied"):
        load_npz(path, "Thing", ())


# --------------------------------------------------------------------------- whole folders


def test_write_folder_replaces_a_previous_write_whole(tmp_path):
    from seqmodels._io import write_folder

    out = tmp_path / "report"
    write_folder(out, {"a.txt": b"1", "b.txt": b"1"})
    write_folder(out, {"a.txt": b"2"}, expected={"a.txt", "b.txt"})
    assert sorted(p.name for p in out.iterdir()) == ["a.txt"]
    assert (out / "a.txt").read_bytes() == b"2"
    assert sorted(p.name for p in tmp_path.iterdir()) == [".report.lock", "report"]


def test_an_interrupted_folder_write_leaves_the_previous_content(tmp_path, monkeypatch):
    from pathlib import Path

    from seqmodels._io import write_folder

    out = tmp_path / "report"
    write_folder(out, {"a.txt": b"old", "b.txt": b"old"})
    real_write = Path.write_bytes

    def interrupt_on_b(self, data):
        if self.name == "b.txt":
            raise KeyboardInterrupt
        return real_write(self, data)

    monkeypatch.setattr(Path, "write_bytes", interrupt_on_b)
    with pytest.raises(KeyboardInterrupt):
        write_folder(out, {"a.txt": b"new", "b.txt": b"new"})
    monkeypatch.undo()
    assert {p.name: p.read_bytes() for p in out.iterdir()} == {"a.txt": b"old", "b.txt": b"old"}
    assert sorted(p.name for p in tmp_path.iterdir()) == [".report.lock", "report"]


def test_write_folder_refuses_to_replace_someone_elses_files(tmp_path):
    from seqmodels._io import write_folder

    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match=r"holds files that this run did not write \(notes.txt\)"):
        write_folder(tmp_path, {"a.txt": b"1"})
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_a_folder_locked_by_a_live_process_is_refused(tmp_path):
    import subprocess
    import sys
    import textwrap

    from seqmodels._io import folder_lock, write_folder

    out = tmp_path / "report"
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import sys, time
        from seqmodels._io import folder_lock
        with folder_lock({str(out)!r}):
            print("locked", flush=True)
            sys.stdin.readline()
        """)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(ValueError, match=rf"another run \(pid {holder.pid}\) is writing"):
            write_folder(out, {"a.txt": b"1"})
    finally:
        holder.communicate("\n", timeout=30)
    with folder_lock(out), folder_lock(out):  # free again, and nested holds are fine
        write_folder(out, {"a.txt": b"1"})
    assert (out / "a.txt").read_bytes() == b"1"
