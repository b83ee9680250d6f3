"""The test process sets TensorFlow's environment as the programs do."""

from flags import cli

cli.set_tensorflow_defaults()  # Before any test module imports TensorFlow.
