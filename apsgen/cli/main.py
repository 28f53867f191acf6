"""apsgen command line entry point (filled in by the foundation work)."""

def main(argv=None) -> int:
    raise SystemExit("apsgen: not yet wired")
