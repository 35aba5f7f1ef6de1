"""Users' text files as text: gzip/bgzip decompressed as they are read, byte-order marks honoured, line endings
normalised, and one clear error line for anything that is not text. Files are read in blocks (`iter_text`), so
memory stays bounded whatever a file's size; `read_text` joins them for the readers of small files (tables, VCFs).
"""

from __future__ import annotations

import codecs
import gzip
import io
import itertools
import zlib
from collections.abc import Iterator

import numpy as np

from dnajax.errors import UserError

UTF8_BOM = b"\xef\xbb\xbf"
# Byte-order marks of the Unicode encodings other than UTF-8 (UTF-32 first: its little-endian mark begins with
# UTF-16's), with the codec that decodes the text after the mark.
_WIDE_BOMS = ((b"\xff\xfe\x00\x00", "utf-32-le", "UTF-32LE"), (b"\x00\x00\xfe\xff", "utf-32-be", "UTF-32BE"),
              (b"\xff\xfe", "utf-16-le", "UTF-16LE"), (b"\xfe\xff", "utf-16-be", "UTF-16BE"))
# What a non-text file shows in its first bytes, for the error line (only formats whose mark is unambiguous).
_DECOMPRESS = "decompress it first (dnajax reads plain, gzip and bgzip files)"
_MAGIC = ((b"BZh", f"it starts like bzip2-compressed data ('BZh'): {_DECOMPRESS}"),
          (b"\xfd7zXZ\x00", f"it starts like xz-compressed data: {_DECOMPRESS}"),
          (b"\x28\xb5\x2f\xfd", f"it starts like zstd-compressed data: {_DECOMPRESS}"),
          (b"PK\x03\x04", "it starts like a zip archive ('PK'): extract the sequence file from it"),
          (b"\x89HDF", "it starts like an HDF5 file: pass a FASTA or GenBank text file"),
          (b"%PDF", "it starts like a PDF document ('%PDF'): pass a FASTA or GenBank text file"))
TEXT_SAMPLE = 65536  # bytes inspected to decide whether a file is text
MAX_NON_TEXT_FRACTION = 0.01  # of the sample; fewer stray bytes are kept (as U+FFFD) and judged where they sit


def _control_codes(units: np.ndarray) -> np.ndarray:
  """Positions of control codes (everything below 32 but tab, line feed and carriage return, and DEL)."""
  return np.flatnonzero(((units < 32) & (units != 9) & (units != 10) & (units != 13)) | (units == 127))


def _utf16_half(zeros: bytes, chars: bytes) -> bool:
  """True when `zeros` are all 0x00 and `chars` are text characters: ASCII text saved as UTF-16."""
  return len(chars) >= 2 and not any(zeros) and not len(_control_codes(np.frombuffer(chars, np.uint8)))


def _refuse_non_text(where: str, raw: bytes, offset: int, n_bad: int, sample: int) -> None:
  """Raise the one-line error for data that is not text: which byte at which offset, and what the bytes show."""
  shown = next((what for magic, what in _MAGIC if raw.startswith(magic)), None)
  even, odd = raw[0:sample:2], raw[1:sample:2]
  if shown is None and any(_utf16_half(zeros, chars) for zeros, chars in ((even, odd), (odd, even))):
    shown = ("every second byte is 0x00, as in UTF-16 text without a byte-order mark; save it as UTF-8 or ASCII "
             "text")
  shown = shown or "pass a FASTA or GenBank text file"
  raise UserError(f"{where}: not text: byte 0x{raw[offset]:02x} at offset {offset} is not a text character "
                  f"({n_bad:,} of the first {sample:,} bytes are not); {shown}")


TEXT_BLOCK = 1 << 23  # bytes read (and decompressed) at a time: memory stays bounded for any file size


def _byte_blocks(f, where: str) -> tuple[Iterator[bytes], str]:
  """The bytes of an open binary file in blocks of about `TEXT_BLOCK`, gzip/bgzip data (by magic bytes; several
  members as bgzip writes them) decompressed as it is read. Returns (blocks, `where` as error lines name it)."""
  magic = f.peek(2)[:2] if hasattr(f, "peek") else b""
  if magic != b"\x1f\x8b":
    return iter(lambda: f.read(TEXT_BLOCK), b""), where
  where = f"{where} (decompressed)"

  def inflate():
    z = gzip.GzipFile(fileobj=f, mode="rb")
    try:
      yield from iter(lambda: z.read(TEXT_BLOCK), b"")
    except (EOFError, OSError, zlib.error):
      raise UserError(f"{where.removesuffix(' (decompressed)')}: gzip data is truncated or corrupt; download the "
                      "file again") from None
  return inflate(), where


def _check_text(head: bytes, where: str) -> None:
  """Refuse (one line) a file whose first `TEXT_SAMPLE` bytes (`head`, after any UTF-8 byte-order mark) are not
  text."""
  start = len(UTF8_BOM) if head.startswith(UTF8_BOM) else 0
  sample = head[start:start + TEXT_SAMPLE]
  bad = _control_codes(np.frombuffer(sample, dtype=np.uint8))
  first = int(bad[0]) if len(bad) else len(sample)
  n_bad = len(bad)
  if not sample.isascii():
    try:
      codecs.getincrementaldecoder("utf-8")().decode(sample, final=False)  # a character cut at the end is fine
    except UnicodeDecodeError as e:
      first = min(first, e.start)
      n_bad += sample.decode("utf-8", errors="replace").count("\ufffd")
  if first < len(sample) and (b"\x00" in sample or n_bad > MAX_NON_TEXT_FRACTION * len(sample)):
    _refuse_non_text(where, head, start + first, n_bad, len(sample))


def _decode_wide(raw: bytes, where: str, bom: bytes, codec: str, label: str) -> str:
  """UTF-16/UTF-32 text after its byte-order mark (read whole: such files are small)."""
  try:
    text = raw[len(bom):].decode(codec)
  except UnicodeDecodeError as e:
    raise UserError(f"{where}: starts with a {label} byte-order mark but byte {e.start + len(bom)} is not "
                    f"{label} ({e.reason}); save the file as UTF-8 or ASCII text") from None
  units = np.frombuffer(text[:TEXT_SAMPLE].encode("utf-32-le"), dtype=np.uint32)
  bad = _control_codes(units)
  if len(bad) and (0 in units[bad] or len(bad) > MAX_NON_TEXT_FRACTION * len(units)):
    pos = int(bad[0])
    raise UserError(f"{where}: {label} text (byte-order mark) holding character U+{int(units[pos]):04X} at byte "
                    f"{len(bom) + len(text[:pos].encode(codec))}, which is not text; pass a FASTA or GenBank "
                    "text file")
  return text


def _text_blocks(blocks: Iterator[bytes], where: str, expected: str) -> Iterator[str]:
  """Decoded, normalised text blocks of a byte stream (see `text_from_bytes` for the rules); the empty-file check
  happens before the first block is given out."""
  head = b""
  for block in blocks:  # the first TEXT_SAMPLE bytes, to decide what the file is
    head += block
    if len(head) >= TEXT_SAMPLE + len(UTF8_BOM):
      break
  rest = blocks
  wide = next(((bom, codec, label) for bom, codec, label in _WIDE_BOMS if head.startswith(bom)), None)
  if wide:
    pieces = [_decode_wide(head + b"".join(rest), where, *wide)]
  else:
    _check_text(head, where)
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    first = head[len(UTF8_BOM):] if head.startswith(UTF8_BOM) else head
    pieces = (decoder.decode(b, final=False) for b in itertools.chain([first], rest))
    pieces = itertools.chain(pieces, [decoder.decode(b"", final=True)])
  held, started, seen_text = "", False, False  # held: text kept back until the next block says how it joins
  waiting: list[str] = []  # blank text before the first non-blank character (checked for an empty file)
  for piece in pieces:
    text = held + piece
    if not text:
      continue
    held = ""
    if text[-1] in "\r\n":  # a CRLF pair or a line-start byte-order mark may straddle the next block
      cut = len(text) - (2 if text.endswith("\r\n") else 1)
      text, held = text[:cut], text[cut:]
    if "\r" in text:  # Windows (CRLF) and classic Mac (CR) line endings
      text = text.replace("\r\n", "\n").replace("\r", "\n")
    if not started:
      text, started = text.removeprefix("\ufeff"), True
    if "\ufeff" in text:  # a byte-order mark at the start of a line (saved files concatenated)
      text = text.replace("\n\ufeff", "\n")
    if not seen_text:
      waiting.append(text)
      if text.isspace() or not text:
        continue
      seen_text, text = True, "".join(waiting)
    yield text
  if held and seen_text:
    yield "\n"  # (a held line break: CR, LF or CRLF)
  if not seen_text:
    raise UserError(f"{where}: file is empty; expected {expected}")


def text_from_bytes(raw: bytes, where: str, expected: str = "FASTA or GenBank records") -> str:
  """A file's bytes as text, exactly as `read_text` reads them (`where` names the source in error lines).

  gzip/bgzip data (by magic bytes) is decompressed; a UTF-8 byte-order mark is dropped and UTF-16/UTF-32 text
  with a byte-order mark is decoded, so such a file reads exactly like the same file saved as plain ASCII; byte-order
  marks at the start of later lines (files concatenated after saving) are dropped too; other UTF-8 is kept, stray
  bytes that are not UTF-8 become U+FFFD (rejected later if they sit in a sequence); line endings become '\\n'.

  Raises UserError (one line) for truncated or corrupt gzip data, an empty file (saying that `expected` was
  expected), and data that is not text (naming
  the first byte that is not text and its offset, and what the bytes show where that is unambiguous)."""
  return "".join(iter_text(io.BufferedReader(io.BytesIO(raw)), where, expected))


def iter_text(f, where: str, expected: str = "FASTA or GenBank records") -> Iterator[str]:
  """The text of an open binary file in blocks of about `TEXT_BLOCK` characters, by the rules of
  `text_from_bytes` (the one decoder of users' text files: memory stays bounded whatever the file's size).
  Raises UserError as `text_from_bytes` does, when the block concerned is read."""
  blocks, where = _byte_blocks(f, where)
  return _text_blocks(blocks, where, expected)


def read_text(path: str, expected: str = "FASTA or GenBank records") -> str:
  """Whole file as text (see `text_from_bytes`: gzip/bgzip decompressed, byte-order marks honoured, line endings
  normalised to '\\n'; `expected` says what an empty file should have held). Every reader of a user's text file
  goes through this or `iter_text` (and `dnajax fetch` validates its downloads through `text_from_bytes`).

  Raises UserError for unreadable, empty, non-text and truncated files."""
  with open_binary(path) as f:
    return "".join(iter_text(f, path, expected))


def open_binary(path: str):
  """`open(path, 'rb')`; UserError (one line) when the file cannot be read."""
  try:
    return open(path, "rb")
  except OSError as e:
    raise UserError(f"{path}: cannot read ({e.strerror}); check the path and permissions") from None
