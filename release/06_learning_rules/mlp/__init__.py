"""mlp: a small numpy framework for building and training multiple layer networks.

This is the course's reference implementation. Student copies released with an
assignment are this package with that assignment's exercises removed.
"""

DEFAULT_SEED = 123456  # Seed used when a component is given no random number generator.
