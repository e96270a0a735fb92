"""Test setup: repo root on sys.path, TF1 graph behaviour, quiet logs."""

import os
import sys

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import tensorflow.compat.v1 as tf  # pylint: disable=g-import-not-at-top,wrong-import-position

tf.disable_v2_behavior()
tf.logging.set_verbosity(tf.logging.ERROR)
