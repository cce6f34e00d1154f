"""Fixtures of the end-to-end suite: real processes in network namespaces.

GREPOP_BUILD names the build directory with the binaries (default: build).
Each test module gets its own lab (fresh namespaces with a per-module prefix)
that is removed when the module ends, whatever the tests did.
"""

import os
import sys
import zlib

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(REPO, "tests", "lab"))

import lab as lablib  # noqa: E402


@pytest.fixture(scope="session")
def build_dir():
    build = os.path.abspath(os.environ.get("GREPOP_BUILD", os.path.join(REPO, "build")))
    if not os.path.isdir(build):
        pytest.fail(f"GREPOP_BUILD={build}: no such build directory")
    return build


def module_prefix(request):
    """A short prefix unique to this process and module."""
    tag = zlib.crc32(request.module.__name__.encode()) % 1000
    return f"t{os.getpid()}m{tag}"


@pytest.fixture(scope="module")
def lab(request, build_dir):
    """The standard lab (router + branch, pop1/svc1, pop2/svc2), services up."""
    if os.geteuid() != 0:
        pytest.skip("needs root for network namespaces")
    the_lab = lablib.standard(module_prefix(request), build_dir)
    yield the_lab
    the_lab.close()
