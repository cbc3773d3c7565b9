"""`python -m verirag.pipeline.cli`: the same command line as `verirag`."""

from verirag.pipeline.cli import main

if __name__ == "__main__":
    main()
