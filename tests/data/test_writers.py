"""`writers.check_outputs` and `writers.write_all`: output paths refused with one line before any work, and several
files written all or none."""

import os
import stat

import pytest

from dnajax.data import writers
from dnajax.errors import UserError


def _tree(root) -> dict[str, bytes | None]:
  """Every path under `root` -> its bytes (None for a directory)."""
  out = {}
  for d, dirs, files in os.walk(root):
    for name in dirs:
      out[os.path.relpath(os.path.join(d, name), root)] = None
    for name in files:
      with open(os.path.join(d, name), "rb") as f:
        out[os.path.relpath(os.path.join(d, name), root)] = f.read()
  return out


@pytest.mark.parametrize("outputs, inputs, needle", [
    ([("--output", "dir")], [], "--output dir: is a directory; give a file path"),
    ([("--output", "file.txt/sub/x.tsv")], [], "cannot create the directory"),
    ([("--output", "a.tsv"), ("--report", "./a.tsv")], [], "--output and --report are the same file"),
    ([("--output", "file.txt")], [("--input", "file.txt")], "is the input file (--input)"),
    ([("--output", "link.txt")], [("--input", "file.txt")], "is the input file (--input)"),
    ([("--output", "/dev/null")], [], "exists and is not a regular file"),
    ([("--output", "")], [], "--output is empty"),
])
def test_check_outputs_refuses_with_one_line(tmp_path, monkeypatch, outputs, inputs, needle):
  monkeypatch.chdir(tmp_path)
  os.mkdir("dir")
  (tmp_path / "file.txt").write_text("input\n")
  os.symlink("file.txt", "link.txt")
  before = _tree(tmp_path)
  with pytest.raises(UserError) as e:
    writers.check_outputs(outputs, inputs)
  assert needle in str(e.value) and "\n" not in str(e.value)
  assert _tree(tmp_path) == before


def test_check_outputs_accepts_new_files_in_new_directories(tmp_path):
  writers.check_outputs([("--output", str(tmp_path / "new" / "deeper" / "a.tsv")), ("--report", str(tmp_path / "b"))],
                        [("--input", str(tmp_path / "in.fa"))])
  assert _tree(tmp_path) == {}  # nothing created by the check


def test_write_all_writes_every_file_with_the_usual_mode(tmp_path):
  old = tmp_path / "old.txt"
  old.write_text("old")
  os.chmod(old, 0o640)
  files = [("--output", str(tmp_path / "sub" / "a.txt"), "text é\n"), ("--report", str(old), b"\x00bytes"),
           ("the plot", str(tmp_path / "sub" / "c.bin"), lambda f: f.write(b"by a function"))]
  writers.write_all(files)
  assert _tree(tmp_path) == {"sub": None, "sub/a.txt": "text é\n".encode(), "old.txt": b"\x00bytes",
                             "sub/c.bin": b"by a function"}
  umask = os.umask(0)
  os.umask(umask)
  assert stat.S_IMODE(os.stat(tmp_path / "sub" / "a.txt").st_mode) == 0o666 & ~umask  # not mkstemp's 0600
  assert stat.S_IMODE(os.stat(old).st_mode) == 0o640  # a replaced file keeps its mode


def test_a_file_that_cannot_be_written_leaves_nothing(tmp_path):
  (tmp_path / "keep.txt").write_text("old")
  before = _tree(tmp_path)

  def full(f):
    f.write(b"partial")
    raise OSError(28, "No space left on device")

  files = [("--output", str(tmp_path / "keep.txt"), "new"), ("--output2", str(tmp_path / "new" / "a.txt"), "a"),
           ("--report", str(tmp_path / "new" / "deeper" / "r.tsv"), full)]
  with pytest.raises(UserError, match=r"--report .*r\.tsv: cannot write \(No space left on device\)"):
    writers.write_all(files)
  assert _tree(tmp_path) == before  # no file, no temporary, no directory it created


def test_a_failed_rename_puts_back_the_files_already_renamed(tmp_path, monkeypatch):
  (tmp_path / "keep.txt").write_text("old")
  before = _tree(tmp_path)
  replace = os.replace

  def failing(src, dst):
    if str(dst).endswith("z.txt"):
      raise OSError(13, "Permission denied")
    return replace(src, dst)

  monkeypatch.setattr(writers.os, "replace", failing)
  files = [("--output", str(tmp_path / "keep.txt"), "new"), ("--fresh", str(tmp_path / "fresh.txt"), "f"),
           ("--report", str(tmp_path / "z.txt"), "z")]
  with pytest.raises(UserError, match="--report .*z.txt: cannot write"):
    writers.write_all(files)
  monkeypatch.undo()
  assert _tree(tmp_path) == before


def test_write_all_refuses_before_writing_anything(tmp_path):
  os.mkdir(tmp_path / "blk.fasta")
  before = _tree(tmp_path)
  with pytest.raises(UserError, match=r"the FASTA .*blk\.fasta: is a directory"):
    writers.write_all([("--output", str(tmp_path / "blk.tsv"), "tsv"), ("the FASTA", str(tmp_path / "blk.fasta"), "")])
  assert _tree(tmp_path) == before


def test_atomic_write_text_errors_are_user_errors(tmp_path):
  with pytest.raises(UserError, match="--output .*: is a directory"):
    writers.atomic_write_text(str(tmp_path), "x")
  writers.atomic_write_text(str(tmp_path / "x.txt"), "x\n")
  assert (tmp_path / "x.txt").read_text() == "x\n"
