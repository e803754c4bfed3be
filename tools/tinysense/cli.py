"""The `tinysense` command line: one subcommand per module in tinysense.commands."""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from types import ModuleType

from tinysense import __version__, commands
from tinysense.errors import CommandError


def command_modules() -> list[ModuleType]:
    modules = [importlib.import_module(f"{commands.__name__}.{info.name}")
               for info in pkgutil.iter_modules(commands.__path__) if not info.name.startswith("_")]
    return sorted(modules, key=lambda module: module.NAME)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tinysense",
        description="Train, convert, verify, bundle and flash models for tinysense sensor-node firmware.",
    )
    parser.add_argument("--version", action="version", version=f"tinysense {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in command_modules():
        sub = subparsers.add_parser(module.NAME, help=module.HELP, description=module.HELP)
        module.add_arguments(sub)
        sub.set_defaults(run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    try:
        return int(args.run(args))
    except CommandError as error:
        print(f"tinysense {args.command}: error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"tinysense {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
