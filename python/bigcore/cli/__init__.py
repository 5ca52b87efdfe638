"""The ``bigcore`` command (also ``python -m bigcore``): one module per subcommand in this package.

A subcommand is a module here whose name does not start with ``_``; the module's name is the subcommand's, and it
defines ``HELP`` (one line for ``bigcore --help``), ``add_arguments(parser)`` and ``run(args) -> int`` (the exit
status). Its docstring is its ``--help`` description. Adding ``bigcore sample`` is adding ``cli/sample.py``.

Errors: a ``CLIError`` (a user mistake: a missing file, a bad option, a foreign checkpoint) prints one line on
stderr and exits with status 2, as argparse's own usage errors do; nothing is written before the input is checked.
"""

import importlib
import pkgutil
import sys

from ._common import ArgumentParser, CLIError


def subcommands():
    """``{name: module}`` for every subcommand module in this package, sorted by name."""
    names = sorted(m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_"))
    return {name: importlib.import_module(f"{__name__}.{name}") for name in names}


def build_parser():
    """The ``bigcore`` argument parser with a subparser per subcommand module."""
    parser = ArgumentParser(prog="bigcore", description="Train, fine-tune, evaluate and export GPT models on a "
                            "CPU with bigcore. 'bigcore COMMAND --help' describes each command.")
    parser.add_argument("--version", action="version", version=f"bigcore {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, module in subcommands().items():
        p = sub.add_parser(name, help=module.HELP, description=module.__doc__)
        module.add_arguments(p)
        p.set_defaults(_run=module.run)
    return parser


def _version():
    from .. import __version__

    return __version__


def main(argv=None):
    """Run ``bigcore`` with ``argv`` (default ``sys.argv[1:]``); returns the exit status.

    Example::

        main(["train", "--preset", "baby", "--max-iters", "20", "--out", "run"])  # 0
    """
    args = build_parser().parse_args(argv)
    try:
        return int(args._run(args) or 0)
    except CLIError as e:
        print(f"bigcore {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"bigcore {args.command}: interrupted", file=sys.stderr)
        return 130


__all__ = ["main", "subcommands", "build_parser", "CLIError"]
