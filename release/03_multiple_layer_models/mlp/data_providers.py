"""Data providers: iterate over a data set in mini-batches.

A provider yields `(inputs_batch, targets_batch)` pairs, one full pass over
the data per iteration (an epoch), and reshuffles the order between passes
when `shuffle_order` is set. All randomness comes from the injected `rng`.

MNIST files are looked up in this order: an explicit `data_dir` argument,
the `MLP_DATA_DIR` environment variable, then a per-user cache directory
(`$XDG_CACHE_HOME/mlp/mnist`, by default `~/.cache/mlp/mnist`), which
`mlp-autograde data fetch` fills.
"""

import os
import pathlib

import numpy as np

from mlp import DEFAULT_SEED

MNIST_SETS = ('train', 'valid', 'test')


def user_cache_dir():
    """Returns the per-user directory where fetched MNIST files are kept."""
    cache_root = os.environ.get('XDG_CACHE_HOME') or os.path.join(
        os.path.expanduser('~'), '.cache')
    return pathlib.Path(cache_root) / 'mlp' / 'mnist'


def resolve_data_dir(data_dir=None):
    """Returns the directory to read MNIST from.

    Args:
        data_dir: An explicit directory; wins over everything else.

    Returns:
        `data_dir` if given, else `$MLP_DATA_DIR` if set, else `user_cache_dir()`.
    """
    if data_dir is not None:
        return pathlib.Path(data_dir)
    if os.environ.get('MLP_DATA_DIR'):
        return pathlib.Path(os.environ['MLP_DATA_DIR'])
    return user_cache_dir()


def mnist_file(which_set, data_dir=None):
    """Returns the path of `mnist-<which_set>.npz`, checking that it exists.

    Args:
        which_set: One of 'train', 'valid' or 'test'.
        data_dir: Optional explicit directory (see `resolve_data_dir`).

    Raises:
        ValueError: If `which_set` is not a known split.
        FileNotFoundError: If the file is missing; the message names the fix.
    """
    if which_set not in MNIST_SETS:
        raise ValueError('which_set must be one of {0}, got {1!r}.'.format(
            MNIST_SETS, which_set))
    path = resolve_data_dir(data_dir) / 'mnist-{0}.npz'.format(which_set)
    if not path.is_file():
        raise FileNotFoundError(
            'MNIST file {0} not found. Run `mlp-autograde data fetch` to download '
            'the data set, or set MLP_DATA_DIR to a folder that holds '
            'mnist-train.npz, mnist-valid.npz and mnist-test.npz.'.format(path))
    return path


def _is_integer(value):
    """Whether `value` is a Python or numpy integer (bools excluded)."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _checked_batch_size(value):
    """Returns `value` if it is a valid batch size.

    Raises:
        ValueError: If `value` is not an integer >= 1.
    """
    if not _is_integer(value) or value < 1:
        raise ValueError('batch_size must be an integer >= 1, got {0!r}.'.format(value))
    return int(value)


def _checked_max_num_batches(value):
    """Returns `value` if it is a valid limit on batches per epoch.

    Raises:
        ValueError: If `value` is not -1 or an integer > 0.
    """
    if not _is_integer(value) or value == 0 or value < -1:
        raise ValueError('max_num_batches must be -1 or an integer > 0, got {0!r}.'.format(
            value))
    return int(value)


class DataProvider(object):
    """Iterates over paired input and target arrays in mini-batches.

    Each pass yields `num_batches` batches of exactly `batch_size` examples
    (a final partial batch is dropped). When the pass ends the provider
    starts a new epoch, reshuffling first if `shuffle_order` is True.

    The data arrays are never copied whole: a shuffle permutes an index
    vector, each batch gathers its own rows (a fresh array), and `inputs` /
    `targets` give the whole data in the current order, gathered when first
    read after a shuffle.
    """

    def __init__(self, inputs, targets, batch_size, max_num_batches=-1,
                 shuffle_order=True, rng=None):
        """Creates a data provider.

        Args:
            inputs: Array of shape (num_data, ...) of inputs.
            targets: Array of shape (num_data, ...) of targets.
            batch_size: Number of examples per batch (>= 1).
            max_num_batches: Upper limit on batches per epoch, or -1 for as
                many as the data allows.
            shuffle_order: Whether to reshuffle the data before each epoch.
            rng: A `numpy.random.RandomState` used for shuffling; a
                fixed-seed one if None.

        Raises:
            ValueError: If the arrays differ in length or `batch_size` or
                `max_num_batches` is not a valid integer.
        """
        if len(inputs) != len(targets):
            raise ValueError(
                'inputs and targets must hold the same number of examples, got '
                '{0} and {1}.'.format(len(inputs), len(targets)))
        self._data_inputs = inputs
        self._data_targets = targets
        self._rows = np.arange(inputs.shape[0])  # row of the data arrays at each position
        self._ordered = {}  # 'inputs' / 'targets' -> the whole array in the current order
        self._batch_size = _checked_batch_size(batch_size)
        self._max_num_batches = _checked_max_num_batches(max_num_batches)
        self._update_num_batches()
        self.shuffle_order = shuffle_order
        self._current_order = np.arange(inputs.shape[0])
        self.rng = np.random.RandomState(DEFAULT_SEED) if rng is None else rng
        self.new_epoch()

    @property
    def inputs(self):
        """All inputs in the current order, shape (num_data, ...)."""
        return self._in_order('inputs', self._data_inputs)

    @inputs.setter
    def inputs(self, value):
        self._set_data(value, self.targets)

    @property
    def targets(self):
        """All targets in the current order, shape (num_data, ...)."""
        return self._in_order('targets', self._data_targets)

    @targets.setter
    def targets(self, value):
        self._set_data(self.inputs, value)

    def _in_order(self, name, data):
        ordered = self._ordered.get(name)
        if ordered is None:
            ordered = self._ordered[name] = data[self._rows]
        return ordered

    def _set_data(self, inputs, targets):
        """Takes arrays already in the current order as the provider's data."""
        self._data_inputs, self._data_targets = inputs, targets
        self._rows = np.arange(len(inputs))
        self._ordered = {'inputs': inputs, 'targets': targets}

    def _permute(self, perm):
        """Reorders the data by `perm` (positions), without copying it."""
        self._current_order = self._current_order[perm]
        self._rows = self._rows[perm]
        self._ordered = {}

    @property
    def batch_size(self):
        """Number of examples per batch."""
        return self._batch_size

    @batch_size.setter
    def batch_size(self, value):
        self._batch_size = _checked_batch_size(value)
        self._update_num_batches()

    @property
    def max_num_batches(self):
        """Upper limit on batches per epoch (-1: no limit)."""
        return self._max_num_batches

    @max_num_batches.setter
    def max_num_batches(self, value):
        self._max_num_batches = _checked_max_num_batches(value)
        self._update_num_batches()

    def _update_num_batches(self):
        possible = self._data_inputs.shape[0] // self.batch_size
        if self.max_num_batches == -1:
            self.num_batches = possible
        else:
            self.num_batches = min(self.max_num_batches, possible)

    def __iter__(self):
        return self

    def new_epoch(self):
        """Starts a new pass through the data, shuffling first if enabled."""
        self._curr_batch = 0
        if self.shuffle_order:
            self.shuffle()

    def reset(self):
        """Restores the original data order, then starts a new epoch."""
        self._permute(np.argsort(self._current_order))
        self.new_epoch()

    def shuffle(self):
        """Permutes the data order at random using `rng`."""
        self._permute(self.rng.permutation(self._rows.shape[0]))

    def __next__(self):
        """Returns the next (inputs_batch, targets_batch).

        Raises:
            StopIteration: At the end of an epoch (a new epoch is then started).
        """
        if self._curr_batch + 1 > self.num_batches:
            self.new_epoch()
            raise StopIteration()
        batch_slice = slice(self._curr_batch * self.batch_size,
                            (self._curr_batch + 1) * self.batch_size)
        self._curr_batch += 1
        return self._batch_of('inputs', self._data_inputs, batch_slice), \
            self._batch_of('targets', self._data_targets, batch_slice)

    def _batch_of(self, name, data, batch_slice):
        """A batch of one array: a view of the ordered array once it was read, else gathered."""
        ordered = self._ordered.get(name)
        if ordered is not None:
            return ordered[batch_slice]
        return data[self._rows[batch_slice]]

    next = __next__  # The course's Python 2 name.


class OneOfKDataProvider(DataProvider):
    """A provider for classification whose batches carry one-of-k target vectors."""

    def __init__(self, inputs, targets, batch_size, max_num_batches=-1,
                 shuffle_order=True, rng=None, num_classes=None):
        """Creates the provider.

        Args:
            inputs: Array of shape (num_data, ...) of inputs.
            targets: Integer class labels of shape (num_data,).
            batch_size, max_num_batches, shuffle_order, rng: As `DataProvider`.
            num_classes: Number of classes K; by default max(targets) + 1.
        """
        if num_classes is not None:
            self.num_classes = num_classes
        elif not hasattr(self, 'num_classes'):
            self.num_classes = int(np.max(targets)) + 1
        super(OneOfKDataProvider, self).__init__(
            inputs, targets, batch_size, max_num_batches, shuffle_order, rng)

    def __next__(self):
        """Returns the next batch with targets as one-of-k arrays (batch_size, K)."""
        inputs_batch, targets_batch = super(OneOfKDataProvider, self).__next__()
        return inputs_batch, self.to_one_of_k(targets_batch)

    next = __next__

    def to_one_of_k(self, int_targets):
        """Maps integer labels of shape (B,) to float one-of-k vectors of shape (B, K)."""
        one_of_k = np.zeros((int_targets.shape[0], self.num_classes))
        one_of_k[np.arange(int_targets.shape[0]), int_targets] = 1.
        return one_of_k


class MNISTDataProvider(OneOfKDataProvider):
    """The MNIST handwritten digits: 784 pixel inputs in [0, 1), ten classes."""

    num_classes = 10

    def __init__(self, which_set='train', batch_size=100, max_num_batches=-1,
                 shuffle_order=True, rng=None, data_dir=None):
        """Loads one MNIST split.

        Args:
            which_set: 'train' (50,000 images), 'valid' (10,000) or 'test' (10,000).
            batch_size, max_num_batches, shuffle_order, rng: As `DataProvider`.
            data_dir: Optional directory holding the .npz files (see module docs).
        """
        self.which_set = which_set
        with np.load(mnist_file(which_set, data_dir)) as loaded:
            inputs = loaded['inputs'].astype(np.float32)
            targets = loaded['targets'].astype(np.int64)
        super(MNISTDataProvider, self).__init__(
            inputs, targets, batch_size, max_num_batches, shuffle_order, rng)

    def __repr__(self):
        return 'MNISTDataProvider(which_set={0!r}, batch_size={1})'.format(
            self.which_set, self.batch_size)
