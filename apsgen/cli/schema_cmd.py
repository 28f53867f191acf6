"""`apsgen schema [--write]`: the job spec's JSON Schema (schemas/job.schema.json)."""

from __future__ import annotations

from pathlib import Path

SCHEMA_FILE = Path(__file__).resolve().parents[1] / "schemas" / "job.schema.json"


def register(sub) -> None:
    p = sub.add_parser("schema", help="print or write the job spec JSON Schema")
    p.add_argument("--write", action="store_true", help=f"write it to {SCHEMA_FILE.parent.name}/{SCHEMA_FILE.name}")
    p.set_defaults(func=run)


def run(args) -> int:
    from apsgen.config import schema_text

    text = schema_text()
    if args.write:
        SCHEMA_FILE.write_text(text)
        print(f"wrote {SCHEMA_FILE}")
    else:
        print(text, end="")
    return 0
