"""What every bench script prints its figures with, and where it finds PostgreSQL."""

import os

# .ci/run's database, also what a developer's local PostgreSQL is set up as in the README.
CI_DATABASE_URL = "postgres://callcenter:callcenter@127.0.0.1:5432/callcenter"


def percentile(values, q: float):
    """The value below which a fraction q of the values fall (nearest rank; q=0.99 for p99)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def ms(seconds: float, digits: int = 2) -> str:
    return f"{seconds * 1000:.{digits}f} ms"


def postgres_url() -> str | None:
    """DATABASE_URL when it is PostgreSQL, else .ci/run's database when it answers, else None
    (SQLite only)."""
    url = os.environ.get("DATABASE_URL", "")
    if url.startswith("postg"):
        return url
    try:
        import psycopg

        psycopg.connect(CI_DATABASE_URL, connect_timeout=2).close()
    except Exception:  # not reachable: SQLite only
        return None
    return CI_DATABASE_URL
