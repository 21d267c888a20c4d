"""TRUSTED course data: grading specs, the release step and the MNIST data set."""
