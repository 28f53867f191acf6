"""`apsgen <command>`: one entry point; each command lives in its own module with `register()`."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

# Each module defines `register(subparsers)`, which adds its parser and sets `func(args) -> int`.
COMMANDS = ["run", "calibrate", "status", "explain", "regrade", "models", "schema", "bench", "eval", "train", "export", "stats", "audit", "push", "compact", "nightly", "submit", "logs", "stop"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="apsgen", description="OmegaPRM process-supervision data generation")
    parser.add_argument("-v", "--verbose", action="store_true", help="verbose logs (engine logs included)")
    from apsgen import __version__

    parser.add_argument("--version", action="version", version=f"apsgen {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"apsgen.cli.{name}_cmd").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if not args.verbose:
        logging.getLogger("apsgen").setLevel(logging.INFO)
    from apsgen.cli.errors import UserError, user_errors

    try:
        return int(args.func(args) or 0)
    except user_errors() as e:
        print(f"apsgen {args.command}: error: {e}", file=sys.stderr)
        return 2
    except UserError as e:
        print(f"apsgen {args.command}: error: {e}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        # `apsgen stats OUT | head`: the reader left; exit quietly like other Unix tools.
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except KeyboardInterrupt:
        print("interrupted; finished problems are saved, run the same command again to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
