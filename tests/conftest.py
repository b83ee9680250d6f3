"""The test process sets TensorFlow's environment as the programs do."""

from flags import cli

cli.set_tensorflow_defaults()  # Before any test module imports TensorFlow.


def pytest_collection_modifyitems(items):
  """Drops `tf.test.TestCase.test_session`, inherited by every TestCase class.

  It is TensorFlow's deprecated context manager, named like a test, which
  pytest collects and TensorFlow then always skips: one placeholder per class,
  counted as a test. The suite's count is of the tests written here.
  """
  items[:] = [item for item in items
              if getattr(getattr(item, "obj", None), "__qualname__", "")
              != "TensorFlowTestCase.test_session"]
