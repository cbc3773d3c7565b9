"""`python -m verirag`: the command line."""

from verirag.pipeline.cli import main

main()
