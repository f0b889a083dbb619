"""The `ingestlab` command's entry point, which imports the command line only when it runs.

The load engine runs in a "spawn" child, and spawn imports the parent's main module again:
for the `ingestlab` console script that is the script, whose top line imports its entry
point. Were that `ingestlab.cli` (polars, altair, every experiment: 3.6 s here), every engine
start under `ingestlab run` (each ceiling step, each long soak's segment) would wait as long
before its first request. Here the child imports this module and nothing else.
"""

from __future__ import annotations


def main() -> int:
    """`ingestlab.cli.main` with the process's arguments."""
    from ingestlab.cli import main as cli_main

    return cli_main()
