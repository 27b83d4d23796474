"""The one --out policy of every command, and the ownership record that makes --overwrite safe.

A command that makes an output folder writes ``.bookcover-outputs.json`` into it first: the
command's name and every entry it writes there (relative path, kind, size). The record is
what "ours" means; no file name or pattern is trusted.

Keeping the record right when a command is killed mid-way: a writer *claims* names before it
writes them (the entry is recorded as pending: kind known, size not yet) and *settles* them
after (their sizes recorded). A kill between the two leaves a pending entry, which --overwrite
may remove whatever its size: the folder was new, empty or ours when the command began, so
nothing else can hold that name. Atomic writers' temp files (``.<name>.<random>.tmp``, see
bookcover.checkpoint) count as part of a pending entry. The record itself is replaced
atomically (temp file + rename).

The policy:

- a new folder, or an empty one, is fine;
- an existing output of the same command: continued only with ``resume=True``, replaced only
  with ``overwrite=True``;
- overwrite deletes exactly the recorded entries, and only when each settled entry is
  unchanged (same kind, same size) and nothing unrecorded is there; the record goes last;
- anything else (a folder with no record, the record of another command, an unrecorded or a
  changed file) is refused with one line naming the flag, even with --overwrite.

A recorded folder that holds a record of its own (a study's runs/<name>) is checked and
removed by that record. A single output file (``gan sample --out grid.png``) is recorded in a
sibling ``.<name>.bookcover-outputs.json``: an existing file is replaced only with overwrite
and only when that sibling record says this command wrote it, at this size.
"""

from __future__ import annotations

import json
import os
import stat
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from bookcover.errors import UsageError
from bookcover.filemodes import follow_umask

RECORD_FILE = ".bookcover-outputs.json"
RECORD_FORMAT = 1
TEMP_SUFFIX = ".tmp"  # atomic writers' temp files: .<name>.<random>.tmp

_lock = threading.Lock()  # a writer thread and the main thread may both update one record


class OutPathError(UsageError):
    """An output path the --out policy refuses (it holds files not ours, or a file is in the way): exit 2."""


# --- the record -------------------------------------------------------------------------------


@dataclass
class _Record:
    command: str
    entries: dict[str, dict] = field(default_factory=dict)  # relative posix path -> {"kind", "size"}


def _kind(path: Path) -> str | None:
    """file, dir or other (a link, a socket...), read without following links; None when absent."""
    try:
        mode = path.lstat().st_mode
    except FileNotFoundError:
        return None
    return "dir" if stat.S_ISDIR(mode) else "file" if stat.S_ISREG(mode) else "other"


def _read(record: Path) -> _Record | None:
    """The record in a file (None when there is none); an unreadable one is no record of ours."""
    if _kind(record) != "file":
        return None
    try:
        raw = json.loads(record.read_text())
        entries = {str(k): {"kind": str(v["kind"]), "size": v.get("size")} for k, v in raw["entries"].items()}
        return _Record(str(raw["command"]), entries)
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def _write(record: Path, rec: _Record) -> None:
    """Replace the record atomically (a kill leaves the old one or the new one, never half)."""
    text = json.dumps({"format": RECORD_FORMAT, "command": rec.command, "entries": rec.entries}, indent=1,
                      sort_keys=True) + "\n"
    fd, tmp = tempfile.mkstemp(prefix=f".{record.name}.", suffix=TEMP_SUFFIX, dir=record.parent)
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        follow_umask(tmp)
        os.replace(tmp, record)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _relative(name: str | os.PathLike) -> str:
    """A name inside the output folder as a clean relative posix path (never escaping it)."""
    rel = PurePosixPath(Path(name).as_posix())
    if rel.is_absolute() or not rel.parts or any(p in ("..", ".") for p in rel.parts) or rel.name == RECORD_FILE:
        raise ValueError(f"not a name inside an output folder: {name!r}")
    return rel.as_posix()


def _update(record: Path, change) -> None:
    """Apply change(_Record) to the record in `record` and write it back; nothing when there is none.

    A folder not prepared by prepare_out_dir (no record) is not an output folder: writing there
    is not recorded, and --overwrite will refuse it (the safe side).
    """
    with _lock:
        rec = _read(record)
        if rec is None:
            return
        if change(rec):
            _write(record, rec)


def claim(folder: str | Path, *names: str | os.PathLike, kind: str = "file") -> None:
    """Record names (relative to folder) as being written, before writing them: pending entries.

    Their parent folders inside `folder` are claimed as folders. Claiming a pending name again
    costs nothing; claiming a settled one makes it pending again (it is about to change).
    """
    folder = Path(folder)
    rels = [_relative(n) for n in names]

    def change(rec: _Record) -> bool:
        changed = False
        for rel in rels:
            parts = rel.split("/")
            for depth in range(1, len(parts)):
                parent = "/".join(parts[:depth])
                if parent not in rec.entries:
                    rec.entries[parent] = {"kind": "dir", "size": None}
                    changed = True
            want = {"kind": kind, "size": None}
            if rec.entries.get(rel) != want:
                rec.entries[rel] = want
                changed = True
        return changed

    _update(folder / RECORD_FILE, change)


def settle(folder: str | Path, *names: str | os.PathLike) -> None:
    """Record the kind and size of names now written in folder (after claim). An absent one stays pending."""
    folder = Path(folder)
    rels = [_relative(n) for n in names]

    def change(rec: _Record) -> bool:
        changed = False
        for rel in rels:
            path = folder / rel
            kind = _kind(path)
            if kind is None:
                continue
            entry = {"kind": kind, "size": path.lstat().st_size if kind == "file" else None}
            if rec.entries.get(rel) != entry:
                rec.entries[rel] = entry
                changed = True
        return changed

    _update(folder / RECORD_FILE, change)


@contextmanager
def writing(folder: str | Path, *names: str | os.PathLike) -> Iterator[Path]:
    """Claim names, let the caller write them, then settle them: ``with writing(out, "last.pt"): ...``.

    On an exception the names stay pending (a half-written file is still ours to remove).
    Yields the folder.
    """
    folder = Path(folder)
    claim(folder, *names)
    yield folder
    settle(folder, *names)


def recorded_command(folder: str | Path) -> str | None:
    """The command whose record a folder holds (None without one)."""
    rec = _read(Path(folder) / RECORD_FILE)
    return None if rec is None else rec.command


# --- the policy for a folder ------------------------------------------------------------------


def _blocking_file(path: Path) -> Path | None:
    """The first existing ancestor of path when it is a file (a folder cannot be made below it)."""
    for parent in path.parents:
        if parent.exists():
            return None if parent.is_dir() else parent
    return None


def _listing(names: list[str], most: int = 3) -> str:
    shown = ", ".join(names[:most])
    return shown + (f" and {len(names) - most} more" if len(names) > most else "")


def _is_temp_of(name: str, pending: set[str]) -> bool:
    """Whether a file name is an atomic writer's temp file of a pending entry (.<name>.<random>.tmp)."""
    if not (name.startswith(".") and name.endswith(TEMP_SUFFIX)):
        return False
    stem = name[1 : -len(TEMP_SUFFIX)]
    return any(stem.startswith(p + ".") and "/" not in stem[len(p) + 1 :] for p in pending)


@dataclass
class _Plan:
    """What an overwrite removes, in order (a folder's contents before it, a record after what it
    lists), or why it may not."""

    order: list[Path] = field(default_factory=list)
    foreign: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)


def _plan(folder: Path, rec: _Record, plan: _Plan, prefix: str = "") -> None:
    """Walk folder against its record, adding what to remove and what is not ours to plan."""
    pending = {name for name, e in rec.entries.items() if e["kind"] == "file" and e["size"] is None}
    pending.add(RECORD_FILE)  # the record's own temp file

    def walk(here: Path, rel_here: str) -> None:
        siblings = {p.rpartition("/")[2] for p in pending if p.rpartition("/")[0] == rel_here}
        for entry in sorted(here.iterdir()):
            rel = f"{rel_here}/{entry.name}" if rel_here else entry.name
            shown = prefix + rel
            if rel == RECORD_FILE:
                continue
            known = rec.entries.get(rel)
            kind = _kind(entry)
            if known is None:
                if kind == "file" and _is_temp_of(entry.name, siblings):
                    plan.order.append(entry)
                else:
                    plan.foreign.append(shown)
                continue
            if kind != known["kind"]:
                plan.changed.append(f"{shown} (now a {kind}, recorded as a {known['kind']})")
                continue
            if kind == "dir":
                nested = _read(entry / RECORD_FILE)
                if nested is not None:
                    _plan(entry, nested, plan, shown + "/")
                else:
                    walk(entry, rel)
                plan.order.append(entry)
            elif known["size"] is not None and entry.lstat().st_size != known["size"]:
                plan.changed.append(f"{shown} (size {entry.lstat().st_size}, recorded {known['size']})")
            else:
                plan.order.append(entry)

    walk(folder, "")
    plan.order.append(folder / RECORD_FILE)  # the record goes last


def check_out_dir(path: str | Path, command: str, flag: str = "--out", *, resume: bool = False,
                  overwrite: bool = False) -> list[Path]:
    """Apply the --out policy for `command` to a folder without touching it; return, in order,
    what an overwrite removes (empty for a new or empty folder, or a resumed one).

    Raises OutPathError (one line, naming the flag) when the folder may not be used.
    """
    path = Path(path)
    blocking = _blocking_file(path)
    if blocking is not None:
        raise OutPathError(f"{flag} {path}: {blocking} is a file, not a folder; choose a new or empty folder")
    if not path.exists() and not path.is_symlink():
        return []
    if not path.is_dir():
        raise OutPathError(f"{flag} {path}: is a file, not a folder; choose a new or empty folder")
    if not any(path.iterdir()):
        return []
    rec = _read(path / RECORD_FILE)
    if rec is None:
        raise OutPathError(
            f"{flag} {path}: holds files that no bookcover-fast command recorded writing (no {RECORD_FILE}); "
            "nothing there is replaced, so choose a new or empty folder"
        )
    if rec.command != command:
        raise OutPathError(
            f"{flag} {path}: holds the output of `{rec.command}`, not of `{command}`; choose a new or empty folder"
        )
    if resume:
        return []
    if not overwrite:
        raise OutPathError(
            f"{flag} {path}: already holds the output of `{command}`; pass --overwrite to replace it, or choose a "
            "new or empty folder"
        )
    plan = _Plan()
    _plan(path, rec, plan)
    if plan.foreign:
        raise OutPathError(
            f"{flag} {path}: holds files `{command}` did not write ({_listing(plan.foreign)}); --overwrite only "
            "replaces its own recorded output, so choose a new or empty folder"
        )
    if plan.changed:
        raise OutPathError(
            f"{flag} {path}: files `{command}` wrote were changed since ({_listing(plan.changed)}); --overwrite "
            "only replaces its output unchanged, so choose a new or empty folder"
        )
    return plan.order


def _remove(entry: Path) -> None:
    if _kind(entry) == "dir":
        entry.rmdir()  # checked empty of anything unrecorded; what it held was removed before it
    else:
        entry.unlink(missing_ok=True)


def _make_dir(path: Path, flag: str) -> None:
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutPathError(f"{flag} {path}: cannot create the folder ({exc.strerror or exc})") from None


def prepare_out_dir(path: str | Path, command: str, flag: str = "--out", *, resume: bool = False,
                    overwrite: bool = False) -> Path:
    """The folder `command` writes to, under the --out policy: with overwrite first emptied of
    the command's recorded output, then created, with a fresh record (a resumed run keeps its own)."""
    path = Path(path)
    for entry in check_out_dir(path, command, flag, resume=resume, overwrite=overwrite):
        _remove(entry)
    _make_dir(path, flag)
    if _read(path / RECORD_FILE) is None:
        _write(path / RECORD_FILE, _Record(command))
    return path


def start_record(folder: str | Path, command: str) -> Path:
    """Give a private folder just made (a mkdtemp to be renamed into place) an empty record of command."""
    folder = Path(folder)
    _write(folder / RECORD_FILE, _Record(command))
    return folder


def remove_output(path: str | Path, command: str, flag: str = "--out") -> None:
    """Remove a folder that holds `command`'s recorded, unchanged output (and nothing else), folder included.

    A path that does not exist is fine; anything else is refused with OutPathError.
    """
    path = Path(path)
    for entry in check_out_dir(path, command, flag, overwrite=True):
        _remove(entry)
    if path.is_dir():
        path.rmdir()


# --- the policy for a single file -------------------------------------------------------------


def file_record(path: str | Path) -> Path:
    """Where a single output file's record lives: ``.<name>.bookcover-outputs.json`` beside it."""
    path = Path(path)
    return path.with_name(f".{path.name}{RECORD_FILE}")


def check_out_file(path: str | Path, command: str, flag: str = "--out", *, overwrite: bool = False) -> Path:
    """Apply the --out policy for `command` to a single output file without touching it."""
    path = Path(path)
    blocking = _blocking_file(path)
    if blocking is not None:
        raise OutPathError(f"{flag} {path}: {blocking} is a file, not a folder")
    if path.is_dir():
        raise OutPathError(f"{flag} {path}: is a folder; name the file to write")
    if not path.exists() and not path.is_symlink():
        return path
    if not overwrite:
        raise OutPathError(f"{flag} {path}: already exists; choose a new file name, or pass --overwrite")
    rec = _read(file_record(path))
    known = None if rec is None or rec.command != command else rec.entries.get(path.name)
    if known is None or _kind(path) != "file":
        raise OutPathError(
            f"{flag} {path}: exists and no record says `{command}` wrote it; --overwrite only replaces its own "
            "recorded output, so choose a new file name"
        )
    if known["size"] is not None and path.lstat().st_size != known["size"]:
        raise OutPathError(
            f"{flag} {path}: changed since `{command}` wrote it (size {path.lstat().st_size}, recorded "
            f"{known['size']}); choose a new file name"
        )
    return path


def prepare_out_file(path: str | Path, command: str, flag: str = "--out", *, overwrite: bool = False) -> Path:
    """A single output file under the --out policy: its folder created and the file claimed in its
    sibling record. Write it, then call settle_file(path)."""
    path = check_out_file(path, command, flag, overwrite=overwrite)
    _make_dir(path.parent, flag)
    record = file_record(path)
    with _lock:
        _write(record, _Record(command, {path.name: {"kind": "file", "size": None}}))
    return path


def settle_file(path: str | Path) -> None:
    """Record the size of a single output file now written (after prepare_out_file)."""
    path = Path(path)

    def change(rec: _Record) -> bool:
        if _kind(path) != "file":
            return False
        rec.entries[path.name] = {"kind": "file", "size": path.lstat().st_size}
        return True

    _update(file_record(path), change)
