"""Shared test setup: no test touches the network (CIFAR-10 is never downloaded during tests)."""

import os

# Set at import, before any test or notebook kernel starts (kernels inherit the environment); tests of the
# download path monkeypatch the downloader and lift this themselves.
os.environ["WF_NO_DOWNLOAD"] = "1"
