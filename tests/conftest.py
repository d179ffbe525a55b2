import os
from urllib.parse import urlsplit, urlunsplit

import pytest
from django.conf import settings
from django.core.cache import cache

from tests.factories import CompanyFactory, UserFactory

# Redis's default number of databases (redis.conf `databases`).
REDIS_DATABASES = 16


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_setupnodes(config, specs):
    """Under `pytest -n N`, each worker gets its own VAR_DIR and Redis database in its environment,
    set before it loads Django's settings (and inherited by the processes its tests start).

    VAR_DIR holds the broker's files, the cache, media, recordings and the SQLite database; a Redis
    database holds the broker's queues and the cache, which every test clears (FLUSHDB). The test
    database's name gets its own _gwN suffix from pytest-django.
    """
    redis_url = os.environ.get("REDIS_URL")
    for index, spec in enumerate(specs):
        # The gateways are named gw0, gw1... in this order: the folder is named after the worker.
        spec.env["VAR_DIR"] = str(settings.VAR_DIR / "workers" / f"gw{index}")
        if redis_url:
            spec.env["REDIS_URL"] = _worker_redis_url(redis_url, index)


def pytest_collection_modifyitems(items):
    # Under `pytest -n`, a long test handed out last keeps its worker busy after the others are done.
    items.sort(key=lambda item: item.get_closest_marker("long") is None)


def _worker_redis_url(url, index):
    parts = urlsplit(url)
    database = int(parts.path.strip("/") or 0) + 1 + index
    if database >= REDIS_DATABASES:
        raise pytest.UsageError(
            f"REDIS_URL {url}: worker {index} would need Redis database {database}; "
            f"use fewer workers or a lower database number (Redis has {REDIS_DATABASES})"
        )
    return urlunsplit(parts._replace(path=f"/{database}"))


@pytest.fixture
def company(db):
    return CompanyFactory()


@pytest.fixture
def company_user(company):
    return UserFactory(company=company)


@pytest.fixture
def other_company_user(db):
    return UserFactory()


@pytest.fixture
def staff_user(db):
    return UserFactory(company=None, is_staff=True, is_superuser=True)


@pytest.fixture(autouse=True)
def _forget_failed_logins():
    # The cache is a directory under VAR_DIR that outlives a test run: every test starts unthrottled.
    cache.clear()
    yield
    cache.clear()


@pytest.fixture(autouse=True)
def _fast_password_hasher(settings):
    # PBKDF2's deliberate slowness is no use in tests.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


CHROMIUM = "/usr/bin/chromium"


@pytest.fixture(scope="module")
def browser():
    """Debian's chromium, headless, driven by Playwright (never a downloaded browser).

    Module-scoped: Playwright's sync API keeps an event loop running in this thread
    while it is open, which the asyncio tests of other modules cannot share.
    """
    from playwright.sync_api import sync_playwright

    # The ORM calls the browser tests make beside that loop are still plain sync calls.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            chromium = playwright.chromium.launch(
                executable_path=CHROMIUM,
                headless=True,
                args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
            )
            yield chromium
            chromium.close()
    finally:
        del os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"]


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    yield page
    context.close()


@pytest.fixture
def screenshot_dir(settings):
    path = settings.VAR_DIR / "screenshots"
    path.mkdir(parents=True, exist_ok=True)
    return path
