"""What a person running the package sees: our lines always, TensorFlow's noise only on request.

`console.info` writes progress and results to stderr whatever the log level.
`quiet_environment` (called before TensorFlow is imported) and `set_verbosity`
(after flags are parsed) hide TensorFlow's C++ INFO/WARNING logs, its
deprecation warnings and its Python INFO lines unless `--verbosity=debug`;
TensorFlow warnings and errors of ours and of TensorFlow stay visible.
"""

import logging
import os
import re
import sys
import warnings

# absl's --verbosity takes integers; these names map onto them.
VERBOSITY_NAMES = {'debug': 1, 'info': 0, 'warning': -1, 'error': -2,
                   'fatal': -3}
LOGGER_NAME = 'contrastive'


def verbosity_from_argv(argv):
  """The --verbosity/-v value on a command line (absl's integer scale), or None."""
  value = None
  for i, arg in enumerate(argv):
    for prefix in ('--verbosity=', '-v='):
      if arg.startswith(prefix):
        value = arg[len(prefix):]
    if arg in ('--verbosity', '-v') and i + 1 < len(argv):
      value = argv[i + 1]
  if value is None:
    return None
  value = value.strip().lower()
  if value in VERBOSITY_NAMES:
    return VERBOSITY_NAMES[value]
  try:
    return int(value)
  except ValueError:
    return None


def is_debug(verbosity):
  """True when `verbosity` (absl's integer scale) asks for everything."""
  return verbosity is not None and verbosity >= 1


def quiet_environment(argv=None):
  """Before `import tensorflow`: hides TensorFlow's C++ start-up logs unless debug."""
  if not is_debug(verbosity_from_argv(sys.argv if argv is None else argv)):
    # 3 also hides C++ ERROR lines: at start-up TF 2.15 prints CUDA-factory
    # "errors" on every machine; real failures still raise in Python.
    os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')
    os.environ.setdefault('PYTHONWARNINGS', 'ignore::DeprecationWarning')


# TensorFlow warnings that say nothing about the user's run.
NOISE_PATTERNS = (
    r'is deprecated', r'Instructions for updating',
    r'includes params argument, but params are not passed to Estimator',
    r'eval_on_tpu ignored because use_tpu is False',
    r'Use tf\.keras instead', r'`seed2` arg is deprecated',
    r'non-resource variables are not supported')


class NoiseFilter(logging.Filter):
  """Drops log records that match NOISE_PATTERNS."""

  def __init__(self):
    super().__init__()
    self._noise = re.compile('|'.join(NOISE_PATTERNS))

  def filter(self, record):
    try:
      text = record.getMessage()
    except (TypeError, ValueError):
      return True
    return not self._noise.search(text)


def set_verbosity(verbosity):
  """After flags: TensorFlow's Python logs at WARNING without known noise (debug: everything)."""
  from absl import logging as absl_logging  # pylint: disable=g-import-not-at-top
  import tensorflow.compat.v1 as tf  # pylint: disable=g-import-not-at-top
  from tensorflow.python.util import deprecation  # pylint: disable=g-import-not-at-top,g-direct-tensorflow-import
  from tensorflow.python.util import module_wrapper  # pylint: disable=g-import-not-at-top,g-direct-tensorflow-import
  debug = is_debug(verbosity)
  tf_logger = logging.getLogger('tensorflow')
  tf_logger.propagate = False  # one copy of each line
  if debug:
    tf.logging.set_verbosity(tf.logging.DEBUG)
    return
  deprecation._PRINT_DEPRECATION_WARNINGS = False  # pylint: disable=protected-access
  module_wrapper._PER_MODULE_WARNING_LIMIT = 0  # pylint: disable=protected-access
  warnings.filterwarnings('ignore', category=DeprecationWarning)
  warnings.filterwarnings('ignore', category=UserWarning,
                          message=r'.*is deprecated')
  tf.logging.set_verbosity(tf.logging.WARN)
  absl_logging.set_verbosity(absl_logging.WARNING)
  if not any(isinstance(f, NoiseFilter) for f in tf_logger.filters):
    tf_logger.addFilter(NoiseFilter())


def _logger():
  logger = logging.getLogger(LOGGER_NAME)
  if not logger.handlers:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter('%(asctime)s %(message)s',
                                           '%H:%M:%S'))
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
  return logger


def info(message, *args):
  """Writes one line for the person running the job (shown at every verbosity)."""
  _logger().info(message, *args)


def accept_verbosity_names(flag_values):
  """Lets absl's integer --verbosity also take debug/info/warning/error/fatal."""
  from absl import flags  # pylint: disable=g-import-not-at-top

  class _Parser(flags.IntegerParser):

    def parse(self, argument):
      if isinstance(argument, str) and argument.strip().lower() in VERBOSITY_NAMES:
        return VERBOSITY_NAMES[argument.strip().lower()]
      return super().parse(argument)

  flag = flag_values['verbosity']
  flag.parser = _Parser()
  flag.help = ('Logging verbosity: debug (or 1) shows everything TensorFlow '
               'logs; the default shows progress, warnings and errors only.')
