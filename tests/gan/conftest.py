"""GAN tests run tiny models: one thread is several times faster than two on a busy shared CPU."""

import pytest

from tests.conftest import torch_threads


@pytest.fixture(autouse=True, scope="package")
def one_thread():
    with torch_threads(1):
        yield
