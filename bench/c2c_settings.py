"""The platform's settings with bench/c2c_urls.py: for click2call_bench.py only, never shipped."""

from config.settings import *  # noqa: F403

ROOT_URLCONF = "bench.c2c_urls"
