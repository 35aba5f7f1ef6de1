"""Writing outputs: whole files or nothing (atomic renames), several files all or none, FASTA entries and TSV tables.

Every command that writes files names them once, as (label, path) pairs - the label is how the user set the path,
e.g. `--output` or `the filled FASTA beside --output` - and calls `check_outputs` before any work (so a bad path is one
line before a model is loaded) and `write_all` at the end (every file to a temporary sibling first, renamed only when
all of them were written; an already-renamed file is put back if a later rename fails).
"""

from __future__ import annotations

import math
import os
import secrets
import stat
import tempfile
from collections.abc import Callable, Sequence
from typing import BinaryIO

from dnajax.errors import UserError

# What a file holds: text (written as UTF-8), bytes, or a function writing to a binary file object (np.savez, savefig).
Content = str | bytes | Callable[[BinaryIO], None]


def fasta_entry(header: str, seq: str, width: int = 80) -> str:
  """One FASTA record as text: '>' + `header`, then the sequence in lines of `width` letters."""
  return f">{header}\n" + "".join(seq[i:i + width] + "\n" for i in range(0, len(seq), width))


def tsv_table(rows: Sequence[dict], columns: Sequence[str]) -> str:
  """A header line and one line per row: floats to 4 decimals, lists comma-joined, None (a value over nothing) and
  non-finite floats as empty cells."""
  def cell(x):
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
      return ""
    return ",".join(map(str, x)) if isinstance(x, list) else f"{x:.4f}" if isinstance(x, float) else str(x)

  return "\n".join(["\t".join(columns)] + ["\t".join(cell(r[c]) for c in columns) for r in rows]) + "\n"


def _same_file(a: str, b: str) -> bool:
  """Whether paths `a` and `b` name one file (after symlinks; hard links and case-insensitive file systems too)."""
  if os.path.realpath(a) == os.path.realpath(b):
    return True
  try:
    return os.path.samefile(a, b)
  except OSError:  # one of them does not exist (yet): different files
    return False


def resolved(path: str) -> str:
  """`path` with symbolic links followed: writing through a link writes its target (the rename that makes writes
  atomic would otherwise replace the link itself)."""
  return os.path.realpath(path) if path and os.path.islink(path) else path


def _check_one(label: str, path: str) -> None:
  """UserError unless `path` can be written as a regular file: not empty, not an existing directory or device, and
  in a directory that exists and is writable or can be created. A symbolic link is judged by its target."""
  if not path:
    raise UserError(f"{label} is empty; give a file path")
  where = f"{label} {path}"
  path = resolved(path)
  if os.path.isdir(path):
    raise UserError(f"{where}: is a directory; give a file path")
  if os.path.exists(path) and not stat.S_ISREG(os.stat(path).st_mode):
    raise UserError(f"{where}: exists and is not a regular file; give a file path")
  parent = os.path.dirname(os.path.abspath(path))
  ancestor = parent
  while not os.path.lexists(ancestor):
    ancestor = os.path.dirname(ancestor)
  if not os.path.isdir(ancestor):
    raise UserError(f"{where}: cannot create the directory {parent} ({ancestor} is not a directory); "
                    "give another path")
  if not os.access(ancestor, os.W_OK | os.X_OK):
    what = "its directory" if ancestor == parent else f"the directory {parent} cannot be created:"
    raise UserError(f"{where}: {what} {ancestor} is not writable; give another path")


def check_outputs(outputs: Sequence[tuple[str, str]], inputs: Sequence[tuple[str, str]] = ()) -> None:
  """Raises UserError (one line naming the output by its label) unless every output (label, path) can be written:
  not an existing directory or device, in a directory that is writable or can be created, not one of the `inputs`
  (label, path), and no two outputs the same file. Creates and writes nothing."""
  for i, (label, path) in enumerate(outputs):
    _check_one(label, path)
    for in_label, in_path in inputs:
      if in_path and _same_file(path, in_path):
        raise UserError(f"{label} {path}: is the input file ({in_label}); writing it would overwrite the input; "
                        "give another path")
    for other_label, other in outputs[:i]:
      if _same_file(path, other):
        raise UserError(f"{other_label} and {label} are the same file ({path}); one would overwrite the other; "
                        "give paths that differ")


def _umask() -> int:
  mask = os.umask(0o022)
  os.umask(mask)
  return mask


def _write_temp(label: str, path: str, content: Content, created: list[str]) -> str:
  """`content` into a new temporary sibling of `path` (its directory created as needed, each new directory appended
  to `created`); returns the temporary's path. UserError when it cannot be written; nothing is left then."""
  d = os.path.dirname(os.path.abspath(path))
  tmp = None
  try:
    missing = []
    while not os.path.isdir(d):
      missing.append(d)
      d = os.path.dirname(d)
    for m in reversed(missing):
      os.mkdir(m)
      created.append(m)
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(os.path.abspath(path)), prefix=".tmp-")
    mode = os.stat(path).st_mode & 0o7777 if os.path.isfile(path) else 0o666 & ~_umask()
    os.fchmod(fd, mode)  # mkstemp makes 0600: give the file the mode a plain open() would
    with os.fdopen(fd, "wb") as f:
      if callable(content):
        content(f)
      else:
        f.write(content.encode("utf-8") if isinstance(content, str) else content)
    return tmp
  except OSError as e:
    if tmp is not None and os.path.exists(tmp):
      os.remove(tmp)
    raise UserError(f"{label} {path}: cannot write ({e.strerror or e}); check the path and free space") from None
  except BaseException:
    if tmp is not None and os.path.exists(tmp):
      os.remove(tmp)
    raise


def _backup(path: str) -> str | None:
  """A hard link to the existing file `path` (to put it back if a later rename fails), or None where there is no
  file or the file system has no hard links."""
  if not os.path.isfile(path):
    return None
  name = os.path.join(os.path.dirname(os.path.abspath(path)), f".bak-{secrets.token_hex(6)}")
  try:
    os.link(path, name)
    return name
  except OSError:
    return None


def _rename_all(temps: Sequence[tuple[str, str, str]]) -> None:
  """Rename each (label, temporary, path); if one fails, the files already renamed are restored (or removed when
  they did not exist before) and UserError names the one that failed."""
  done = []  # (path, backup, existed)
  try:
    for label, tmp, path in temps:
      existed, backup = os.path.lexists(path), _backup(path)
      try:
        os.replace(tmp, path)
      except OSError as e:
        if backup:
          os.remove(backup)
        raise UserError(f"{label} {path}: cannot write ({e.strerror or e}); nothing was written") from None
      done.append((path, backup, existed))
  except BaseException:
    for path, backup, existed in reversed(done):
      if backup:
        os.replace(backup, path)
      elif not existed:
        os.remove(path)
    raise
  for _, backup, _ in done:
    if backup:
      os.remove(backup)


def write_all(files: Sequence[tuple[str, str, Content]]) -> None:
  """Write every (label, path, content) or none of them: the paths are checked (`check_outputs`), every file is
  written to a temporary sibling, and only when all were written are they renamed into place. Parent directories are
  created as needed (and removed again on failure). Raises UserError naming the file by its label; nothing is
  written or left behind then."""
  check_outputs([(label, path) for label, path, _ in files])
  files = [(label, resolved(path), content) for label, path, content in files]
  temps, created = [], []
  try:
    for label, path, content in files:
      temps.append((label, _write_temp(label, path, content, created), path))
    _rename_all(temps)
  except BaseException:
    for _, tmp, _ in temps:
      if os.path.exists(tmp):
        os.remove(tmp)
    for d in reversed(created):
      try:
        os.rmdir(d)
      except OSError:  # something else was put there meanwhile: leave it
        pass
    raise


def atomic_write_text(path: str, text: str, label: str = "--output") -> None:
  """Write one whole file or nothing (`write_all` of one file). Raises UserError naming `label` when `path` cannot
  be written (a directory, a device, a directory that cannot be created or written)."""
  write_all([(label, path, text)])
