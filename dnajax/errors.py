"""The one exception type that reaches the user as a single line with exit code 2."""


class UserError(Exception):
  """Bad input, bad config or a refused action: what went wrong, where, and what to do.

  The CLI prints `dnajax: error: <message>` and exits with code 2, with no traceback.
  """
