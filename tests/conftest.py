"""Shared pytest fixtures.

`strict_floats` gives a context manager under which numpy overflow,
invalid-value and divide-by-zero events (and any warning) raise.

`mnist_dir` locates the course's MNIST `.npz` files the way the product does
(`mlp.data_providers.resolve_data_dir`): `$MLP_DATA_DIR` if set, else the
per-user cache that `mlp-autograde data fetch` (and `./run demo`) fills
(`$XDG_CACHE_HOME/mlp/mnist` or `~/.cache/mlp/mnist`), and, when neither holds
the files, the shared data folder next to the repository
(`<repo>/../shared/data/mnist`). Tests that need it are skipped, with the
reason, when the files are absent; `./run test` fetches them first. `mnist_env`
points `$MLP_DATA_DIR` at them for a test module (the grader and the processes
it starts read it).

`demo_class` is the demo's class of lab 3 (autograder/demo.py), written once
per test module.

`reachable_tmp` makes private temporary folders for tests that point the
grader's TMPDIR at one (to look for leftovers or for a child's folder). pytest's
own folders are owner-only (0700), and a root grader drops the child to an
unprivileged uid that could not pass through them, so the grader would make its
sandbox trees elsewhere (`isolation.sandbox_parent`) and the test would look in
the wrong place. These folders lie where every uid can reach them and are
removed at the end of the session.
"""

import os
import pathlib
import shutil
import tempfile
import warnings
from contextlib import contextmanager

import numpy as np
import pytest

REPO_ROOT = pathlib.Path(__file__).resolve().parent.parent
SHARED_MNIST_DIR = REPO_ROOT.parent / 'shared' / 'data' / 'mnist'
MNIST_FILES = ('mnist-train.npz', 'mnist-valid.npz', 'mnist-test.npz')


def _has_mnist(directory):
    return all((directory / name).is_file() for name in MNIST_FILES)


def find_mnist_dir():
    """Returns the directory that should hold the MNIST files (may not exist).

    `$MLP_DATA_DIR` when set (as for the product, it wins even when empty, so a
    wrong setting shows); else the per-user cache if it holds the files; else
    the shared folder if it does; else the cache (where `data fetch` puts them).
    """
    from_env = os.environ.get('MLP_DATA_DIR')
    if from_env:
        return pathlib.Path(from_env)
    from mlp.data_providers import user_cache_dir
    cache = pathlib.Path(user_cache_dir())
    for directory in (cache, SHARED_MNIST_DIR):
        if _has_mnist(directory):
            return directory
    return cache


@pytest.fixture(scope='session')
def mnist_dir():
    """Directory holding mnist-{train,valid,test}.npz; skips the test if absent."""
    directory = find_mnist_dir()
    missing = [name for name in MNIST_FILES if not (directory / name).is_file()]
    if missing:
        pytest.skip('MNIST data not found in {0} (missing {1}); set MLP_DATA_DIR or run '
                    '`mlp-autograde data fetch`.'.format(directory, ', '.join(missing)))
    return directory


@pytest.fixture(scope='module')
def mnist_env(mnist_dir):
    """`$MLP_DATA_DIR` set to `mnist_dir` in this process for the module, then restored."""
    previous = os.environ.get('MLP_DATA_DIR')
    os.environ['MLP_DATA_DIR'] = str(mnist_dir)
    yield
    if previous is None:
        os.environ.pop('MLP_DATA_DIR', None)
    else:
        os.environ['MLP_DATA_DIR'] = previous


@pytest.fixture(scope='module')
def demo_class(tmp_path_factory):
    """A folder holding the demo class: `autograder.demo.write_example_submissions`."""
    from autograder.demo import write_example_submissions
    from autograder.course.spec import default_course_root

    folder = tmp_path_factory.mktemp('demo-class')
    write_example_submissions(default_course_root(), folder)
    return folder


@pytest.fixture
def rng():
    """A freshly seeded numpy RandomState, so each test is reproducible on its own."""
    return np.random.RandomState(20240611)


@contextmanager
def _strict_floats():
    """Turns numpy overflow, invalid values and division by zero into errors.

    Underflow to 0 is left alone: it is the exact floating-point answer for,
    e.g., exp(-2000), and stable softmax implementations rely on it.
    """
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        with np.errstate(over='raise', invalid='raise', divide='raise', under='ignore'):
            yield


@pytest.fixture
def strict_floats():
    """The `_strict_floats` context manager: `with strict_floats(): ...`."""
    return _strict_floats


class ReachableTempFactory:
    """Makes temporary folders that any uid may pass through (see the module docstring)."""

    def __init__(self):
        self._made = []

    def mktemp(self, name):
        """A new empty folder, mode 0755, in a shared temporary folder; its name starts with ``name``."""
        from autograder.sandbox.isolation import sandbox_parent

        folder = pathlib.Path(tempfile.mkdtemp(prefix='mlp-test-{0}-'.format(name), dir=sandbox_parent()))
        folder.chmod(0o755)
        self._made.append(folder)
        return folder

    def remove_all(self):
        for folder in self._made:
            shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope='session')
def reachable_tmp():
    factory = ReachableTempFactory()
    yield factory
    factory.remove_all()
