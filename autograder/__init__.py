"""mlp-autograde: the trusted grading harness for the mlp course notebooks."""

__version__ = "0.1.0"
