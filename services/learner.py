"""The learner service process: configuration from the TOML file named by STREAMMETA_CONFIG,
STREAMMETA_* variables and these arguments (see ``streammeta run --help``); runs until SIGTERM."""

import sys

from streammeta.cli import main

if __name__ == "__main__":
    raise SystemExit(main(["run", *sys.argv[1:]]))
