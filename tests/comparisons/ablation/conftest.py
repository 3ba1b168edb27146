import pytest
import torch


@pytest.fixture(autouse=True)
def _one_thread_for_compare_tests(request):
    """The compare tests train tiny networks: one thread is faster than two fighting over 2 cores."""
    if not request.module.__name__.split(".")[-1].startswith("test_compare"):
        yield
        return
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
