"""The simulator process: publishes a drifting benchmark stream to the input topic
(``streammeta simulate --help``), configured like the learner."""

import sys

from streammeta.cli import main

if __name__ == "__main__":
    raise SystemExit(main(["simulate", *sys.argv[1:]]))
