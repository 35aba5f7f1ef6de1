"""The `dnajax` command: dispatch only. The verb table names each verb's module in `dnajax.apps`; that module adds
its arguments and runs. Every user-facing failure is one line on stderr, `dnajax: error: ...`, with exit code 2.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from dnajax import runtime
from dnajax.errors import UserError

# verb -> one-line help; the module is dnajax.apps.<verb> (or MODULES[verb])
VERBS = {
    "prepare": "FASTA/GenBank files -> a corpus directory with a train/val split",
    "fetch": "download nucleotide records from NCBI (cached)",
    "train": "train (or resume) a model in --workdir",
    "evaluate": "masked accuracy / loss of a checkpoint on FASTA/GenBank files",
    "predict": "fill the '?' positions of a FASTA file",
    "score": "pseudo-log-likelihood of each sequence (each base or codon masked in turn)",
    "features": "expression features of coding sequences (CAI, GC, 5' folding energy, rare codons, model PLL) as TSV",
    "embed": "hidden states of each sequence of a FASTA/CSV/TSV table (mean-pooled or per position) to .npz",
    "vep": "zero-shot variant effect scores (log-likelihood ratios) for a VCF or variant table and a reference",
    "finetune": "a classifier or regressor from a pretrained run and labelled sequences (head, full or LoRA)",
    "design": "coding sequences for a protein: model-scored, under synthesis constraints",
    "generate": "new sequences by iterative, confidence-ordered unmasking; plausibility report",
    "baseline": "the k-mer context and majority-base baselines alone",
    "report": "training/validation curves (PNG) and a Markdown summary of a run",
    "bench": "tokens/s, MFU, compile time, memory, input-pipeline rate of a config",
    "sweep": "train a grid of config changes (layers x heads, learning rates, ...) and tabulate and plot them",
    "models": "the pretrained models shipped with dnajax (usable as --workdir NAME): data, command, numbers",
    "export": "a run's weights as safetensors + model.json + a PyTorch module",
    "import": "an exported folder back into a run directory (to fine-tune, evaluate, score...)",
}
# The module in dnajax.apps of a verb whose name is not a module name (`import` is a Python keyword).
MODULES = {"import": "import_run"}


class _Parser(argparse.ArgumentParser):
  """argparse with one-line errors (UserError): `main` prefixes them with `dnajax: error:`, so the message does not
  repeat the program's name; it ends with the help to read, the verb's own when there is a verb."""

  _WORDS = (("invalid int value", "not an integer"), ("invalid float value", "not a number"))

  def parse_args(self, args=None, namespace=None):
    """As argparse's, but unrecognized arguments point at the chosen verb's help (`dnajax train --help`)."""
    ns, extra = self.parse_known_args(args, namespace)
    if extra:
      verb = getattr(ns, "verb", None)
      raise UserError(f"unrecognized arguments: {' '.join(extra)}; see `{f'dnajax {verb}' if verb else self.prog} "
                      "--help`")
    return ns

  def error(self, message):  # one line, exit 2 (argparse's default prints the usage too)
    for theirs, ours in self._WORDS:
      message = message.replace(theirs, ours)
    raise UserError(f"{message}; see `{self.prog} --help`")


def _app(verb: str):
  return importlib.import_module(f"dnajax.apps.{MODULES.get(verb, verb)}")


def _parser(verb: str | None) -> argparse.ArgumentParser:
  """All verbs as sub-commands; only the chosen verb's module is imported to add its arguments."""
  p = _Parser(prog="dnajax", description="Masked-nucleotide language models in JAX/Flax.")
  sub = p.add_subparsers(dest="verb", required=True, parser_class=_Parser)
  for name, help_text in VERBS.items():
    s = sub.add_parser(name, help=help_text, description=help_text)
    if name == verb:
      _app(name).add_arguments(s)
  return p


def split_overrides(argv: list[str]) -> tuple[list[str], list[tuple[str, str]]]:
  """(the other arguments, [(key, value)] of every `--config.KEY=VALUE` or `--config.KEY VALUE`)."""
  rest, overrides, i = [], [], 0
  while i < len(argv):
    a = argv[i]
    if a.startswith("--config."):
      key, eq, value = a[len("--config."):].partition("=")
      if not eq:
        if i + 1 >= len(argv):
          raise UserError(f"{a}: missing value; write {a}=VALUE")
        value, i = argv[i + 1], i + 1
      overrides.append((key, value))
    else:
      rest.append(a)
    i += 1
  return rest, overrides


def run(argv: list[str]) -> int:
  """Parse `argv` (without the program name), run the verb, return its exit code; UserError for bad
  usage."""
  runtime.setup_logging()  # before any app module is imported (some libraries add handlers when imported)
  runtime.check_environment()
  argv, overrides = split_overrides(argv)
  verb = next((a for a in argv if not a.startswith("-")), None)
  args = _parser(verb if verb in VERBS else None).parse_args(argv)
  app = _app(args.verb)
  if overrides and not getattr(app, "CONFIG_OVERRIDES", False):
    takes = [v for v in VERBS if getattr(_app(v), "CONFIG_OVERRIDES", False)]
    raise UserError(f"--config.* overrides apply to {', '.join(f'`dnajax {v}`' for v in takes)} only, "
                    f"not `{args.verb}`")
  return app.main(args, overrides)


def main(argv: list[str] | None = None) -> int:
  """The console script: `run`, with UserError as one line on stderr and exit code 2."""
  try:
    return run(sys.argv[1:] if argv is None else argv)
  except UserError as e:
    print(f"dnajax: error: {e}", file=sys.stderr)
    return 2
  except KeyboardInterrupt:
    print("dnajax: interrupted", file=sys.stderr)
    return 130


if __name__ == "__main__":
  sys.exit(main())
