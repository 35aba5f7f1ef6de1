"""`dnajax fetch` against an E-utilities stand-in on 127.0.0.1 (tests never reach the internet)."""

import http.server
import threading
import urllib.parse

import pytest

from dnajax import cli
from dnajax.apps import fetch
from dnajax.data import readers

RECORDS = {"NC_TEST1": ">NC_TEST1 test record\nACGTACGTACGTNNACGT\n"}


class _Handler(http.server.BaseHTTPRequestHandler):
  requests: list = []

  def do_GET(self):
    url = urllib.parse.urlparse(self.path)
    q = dict(urllib.parse.parse_qsl(url.query))
    _Handler.requests.append((url.path, q))
    body = RECORDS.get(q.get("id")) if url.path.endswith("/efetch.fcgi") else None
    if q.get("id") == "HTML_PAGE":
      body = "<html><body>Error</body></html>"
    if body is None:
      self.send_response(400)
      self.end_headers()
      return
    self.send_response(200)
    self.send_header("Content-Type", "text/plain")
    self.end_headers()
    self.wfile.write(body.encode())

  def log_message(self, *args):
    pass


@pytest.fixture
def server(monkeypatch, tmp_path):
  httpd = http.server.HTTPServer(("127.0.0.1", 0), _Handler)
  thread = threading.Thread(target=httpd.serve_forever, daemon=True)
  thread.start()
  monkeypatch.setenv("DNAJAX_ENTREZ_URL", f"http://127.0.0.1:{httpd.server_port}/entrez/eutils/")
  monkeypatch.setenv("DNAJAX_CACHE", str(tmp_path / "cache"))
  _Handler.requests = []
  yield _Handler.requests
  httpd.shutdown()


def test_fetch_then_cache(server, tmp_path, capsys):
  out = str(tmp_path / "x.fa")
  assert cli.main(["fetch", "NC_TEST1", "--output", out, "--email", "me@example.org"]) == 0
  assert len(server) == 1
  path, q = server[0]
  assert path == "/entrez/eutils/efetch.fcgi"
  assert q["db"] == "nuccore" and q["rettype"] == "fasta" and q["email"] == "me@example.org"
  rec = readers.read_file(out)[0]
  assert rec.name == "NC_TEST1" and len(rec.ids) == 18
  assert cli.main(["fetch", "NC_TEST1", "--output", out]) == 0
  assert len(server) == 1  # served from the cache: no second request
  assert "1 from the cache" in capsys.readouterr().out


def test_fetch_errors_are_one_line(server, tmp_path, capsys, monkeypatch):
  monkeypatch.setattr(fetch.Entrez, "max_tries", 1)
  out = tmp_path / "y.fa"
  assert cli.main(["fetch", "NOPE1", "--output", str(out)]) == 2
  assert "HTTP 400" in capsys.readouterr().err
  assert cli.main(["fetch", "HTML_PAGE", "--output", str(out)]) == 2
  err = capsys.readouterr().err
  assert "not a fasta nucleotide record" in err and err.count("\n") == 1
  assert not out.exists() and not (tmp_path / "cache" / "entrez" / "HTML_PAGE.fasta").exists()
