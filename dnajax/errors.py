"""The one exception type that reaches the user as a single line with exit code 2."""


class UserError(Exception):
  """Bad input, bad config or a refused action: what went wrong, where, and what to do.

  The CLI prints `dnajax: error: <message>` and exits with code 2, with no traceback.
  """


def warn(message: str) -> None:
  """One `dnajax: warning: <message>` line on stderr: the input was read, and something in it needs the user's eye
  (what it shows, where, and what follows from it)."""
  import sys

  print(f"dnajax: warning: {message}", file=sys.stderr)
