#!/usr/bin/env python
"""Django's command-line utility for administrative tasks."""

import os
import sys
from pathlib import Path


def main():
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    from config import env

    # Only the commands typed beside `make run` read what it left in var/: gunicorn and celery
    # never do, so a file left in a deployed checkout cannot turn debug on for what it serves.
    base = Path(__file__).resolve().parent
    env.load_make_run_env(env.env_path("VAR_DIR", base / "var") / env.MAKE_RUN_ENV_FILE)
    from django.conf import settings
    from django.core.exceptions import ImproperlyConfigured
    from django.core.management import execute_from_command_line

    # A setting missing or wrong is the operator's to fix: one line naming the variable, not a
    # traceback. (With --settings the module is only known once Django reads the command line.)
    if not any(arg.startswith("--settings") for arg in sys.argv):
        try:
            settings.INSTALLED_APPS  # noqa: B018 (reading one setting loads them all)
        except ImproperlyConfigured as exc:
            sys.exit(f"manage.py: {exc}")
    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
