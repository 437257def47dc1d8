"""Shared test settings. The suite runs on pytest-xdist workers (`make test`: `-n 2 --dist loadfile`); each
worker gets its share of the cores for torch's threads, since two workers with every core each would
oversubscribe the machine and slow both."""

import os

import torch

_workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
if _workers > 1:
    torch.set_num_threads(max(1, (os.cpu_count() or 1) // _workers))
