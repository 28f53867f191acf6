"""The `apsgen` command line: each subcommand a thin layer over a library function."""
