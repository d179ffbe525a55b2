import pytest
from django.core.cache import cache


@pytest.fixture(autouse=True)
def _forget_failed_logins():
    # The cache is a directory under VAR_DIR that outlives a test run; every test starts unthrottled.
    cache.clear()
    yield
    cache.clear()
