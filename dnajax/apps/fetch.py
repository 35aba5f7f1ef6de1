"""`dnajax fetch`: nucleotide records from NCBI through Bio.Entrez (which retries and rate-limits), cached locally
so a repeated fetch makes no request.

Settings (environment):
  DNAJAX_ENTREZ_URL   E-utilities base URL (default https://eutils.ncbi.nlm.nih.gov/entrez/eutils/); point it at
                      a mirror or a local test server. Biopython hard-codes the public URL, so dnajax builds the
                      efetch request itself and sends it through Bio.Entrez's retrying, rate-limited opener.
  DNAJAX_CACHE        cache directory (default ~/.cache/dnajax); fetched records live in its `entrez/` folder.
  NCBI_API_KEY        optional NCBI API key (raises the rate limit).
"""

from __future__ import annotations

import os
import re
import tempfile
import urllib.error

from Bio import Entrez

from dnajax.data import readers, writers
from dnajax.data import text as text_lib
from dnajax.errors import UserError

DEFAULT_URL = "https://eutils.ncbi.nlm.nih.gov/entrez/eutils/"
RETTYPE = {"fasta": "fasta", "genbank": "gbwithparts"}
_ACCESSION = re.compile(r"^[A-Za-z0-9_.\-]+$")


def cache_dir() -> str:
  """Where fetched records are cached ($DNAJAX_CACHE/entrez, default ~/.cache/dnajax/entrez)."""
  return os.path.join(os.environ.get("DNAJAX_CACHE") or os.path.expanduser("~/.cache/dnajax"), "entrez")


def _request(accession: str, fmt: str, email: str | None) -> bytes:
  base = os.environ.get("DNAJAX_ENTREZ_URL", DEFAULT_URL).rstrip("/") + "/"
  params = {"db": "nuccore", "id": accession, "rettype": RETTYPE[fmt], "retmode": "text",
            "email": email or os.environ.get("NCBI_EMAIL") or "dnajax-user@example.org",
            "tool": "dnajax", "api_key": os.environ.get("NCBI_API_KEY")}
  request = Entrez._build_request(base + "efetch.fcgi", params)  # noqa: SLF001 (Biopython has no base-URL option)
  try:
    handle = Entrez._open(request)  # noqa: SLF001  retries, 429 handling and NCBI's rate limit
    data = handle.read()
  except urllib.error.HTTPError as e:
    raise UserError(f"fetch {accession}: the server answered HTTP {e.code}; check the accession") from None
  except (urllib.error.URLError, OSError) as e:
    raise UserError(f"fetch {accession}: cannot reach {base} ({getattr(e, 'reason', e)}); check the network "
                    "or DNAJAX_ENTREZ_URL") from None
  return data if isinstance(data, bytes) else data.encode("utf-8")


def fetch_one(accession: str, fmt: str = "fasta", email: str | None = None) -> tuple[str, bool]:
  """Text of one record, validated as nucleotide data; (text, came_from_cache). The answer is read as any user
  file is (`text.text_from_bytes`: byte-order marks, UTF-16, gzip, line endings), and the normalised text is
  what is cached and returned. Raises UserError for a bad accession, a failed request or an answer that is not a
  `fmt` nucleotide record (nothing is cached then)."""
  if not _ACCESSION.match(accession):
    raise UserError(f"fetch: {accession!r} is not an accession (letters, digits, '_', '.', '-')")
  path = os.path.join(cache_dir(), f"{accession}.{fmt}")
  if os.path.isfile(path):
    return text_lib.read_text(path), True
  data = _request(accession, fmt, email)
  # Validate before caching: an error page or an empty answer must not be cached.
  os.makedirs(cache_dir(), exist_ok=True)
  fd, tmp = tempfile.mkstemp(dir=cache_dir(), prefix=".tmp-", suffix=".fa" if fmt == "fasta" else ".gb")
  try:
    with os.fdopen(fd, "w", encoding="utf-8") as f:
      text = text_lib.text_from_bytes(data, tmp)  # as any user file is read; `tmp` stands for the answer
      f.write(text)
    readers.read_file(tmp, fmt)
  except BaseException as e:
    os.remove(tmp)
    if not isinstance(e, UserError):
      raise
    raise UserError(f"fetch {accession}: the answer is not a {fmt} nucleotide record ({str(e).split(': ', 1)[-1]})"
                    ) from None
  os.replace(tmp, path)
  return text, False


def fetch(accessions: list[str], output: str, fmt: str = "fasta", email: str | None = None) -> dict:
  """Fetch (or take from the cache) each accession and write them all to `output`, or nothing on any failure.
  Returns {output, records, from_cache}; raises UserError naming the accession that failed."""
  if fmt not in RETTYPE:
    raise UserError(f"--format {fmt}: use fasta or genbank")
  if not accessions:
    raise UserError("fetch: give at least one accession")
  writers.check_outputs([("--output", output)])  # before any request
  texts, cached = [], 0
  for acc in accessions:
    text, hit = fetch_one(acc, fmt, email)
    texts.append(text.rstrip("\n") + "\n")
    cached += hit
  writers.atomic_write_text(output, "".join(texts))
  return {"output": output, "records": len(accessions), "from_cache": cached}


def add_arguments(p) -> None:
  p.add_argument("accessions", nargs="+", metavar="ACCESSION")
  p.add_argument("--output", required=True)
  p.add_argument("--email", help="your e-mail address, sent to NCBI as E-utilities asks")
  p.add_argument("--format", choices=("fasta", "genbank"), default="fasta")


def main(args, overrides) -> int:
  r = fetch(args.accessions, args.output, args.format, args.email)
  print(f"wrote {r['records']} record(s) to {r['output']} ({r['from_cache']} from the cache)")
  return 0
