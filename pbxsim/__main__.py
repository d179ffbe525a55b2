"""`python -m pbxsim`: `manage.py pbxsim` without Django (see pbxsim.command)."""

import argparse
import sys

from pbxsim.command import PbxsimStartError, add_arguments, run


def main():
    parser = argparse.ArgumentParser(prog="pbxsim", description="Run the PBX simulator.")
    add_arguments(parser)
    try:
        run(vars(parser.parse_args()))
    except PbxsimStartError as exc:
        sys.exit(f"pbxsim: {exc}")


if __name__ == "__main__":
    main()
