"""One training step of the real model_fn on R replicas (a subprocess of test_distribute.py).

Usage: distribute_step.py REPLICAS OUT_DIR INIT_DIR_OR_- CASE_JSON...
REPLICAS -1: one worker of a multi_worker job (TF_CONFIG set by the caller);
REPLICAS `reordered`: one device on the global batch's rows in another order
(the same step in exact arithmetic: its difference is float32 rounding).

Each CASE_JSON is {"name": ..., "flags": {hparam: value}}.  For every case the
same fixed global batch (no random augmentation) trains one step through
run.build_estimator: no strategy when REPLICAS is 0 (the one_device path),
else MirroredStrategy over REPLICAS logical CPUs.  With INIT_DIR, training
starts from INIT_DIR/NAME's step-0 checkpoint (the same initial weights).
Writes OUT_DIR/NAME/step1.npz: every checkpoint variable after the step, the
loss the estimator reported (its `loss` summary) and the model_fn's
TensorBoard scalars (see reported_values).
"""

import glob
import json
import os
import shutil
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import tensorflow.compat.v1 as tf  # pylint: disable=g-import-not-at-top,wrong-import-position

import distribute  # pylint: disable=g-import-not-at-top,wrong-import-position
import hparams_flags  # pylint: disable=wrong-import-position
import run  # pylint: disable=wrong-import-position

GLOBAL_BATCH = 8
NUM_CLASSES = 4
NUM_EXAMPLES = 32

BASE = dict(use_tpu=False, dataset='synthetic', image_size=16,
            resnet_depth=18, train_batch_size=GLOBAL_BATCH,
            synthetic_train_examples=NUM_EXAMPLES, proj_out_dim=16,
            num_proj_layers=2, optimizer='momentum', learning_rate=0.5,
            learning_rate_scaling='linear', warmup_epochs=0,
            train_steps=1, checkpoint_steps=1, train_summary_steps=1,
            use_blur=False, keep_hub_module_max=0, knn_bank_size=0, seed=1)


# Rows of the reordered batch: another summation order for every batch sum.
REORDER = [5, 2, 7, 0, 3, 6, 1, 4]


def global_batch(hp, reordered=False):
  """The fixed global batch: features and labels as numpy arrays."""
  rng = np.random.RandomState(0)
  views = hp.views_per_example
  images = rng.uniform(size=(GLOBAL_BATCH, hp.image_size, hp.image_size,
                             3 * views)).astype(np.float32)
  ids = np.array([3, 17, 5, 30, 11, 0, 22, 8], np.int64)
  labels = (ids % NUM_CLASSES).astype(np.int32)
  rows = REORDER if reordered else slice(None)
  return ({'image': images[rows], 'id': ids[rows]},
          {'label': labels[rows], 'mask': np.ones(GLOBAL_BATCH, np.float32)})


def input_fn(hp, reordered=False):
  """Per-replica batches that concatenate to the global batch, in order."""

  def fn(params, input_context=None):
    batch = params['batch_size']
    if input_context is not None:
      batch = input_context.get_per_replica_batch_size(batch)
    features, labels = global_batch(hp, reordered)
    if input_context is not None and input_context.num_input_pipelines > 1:
      # One worker per pipeline: worker w holds replicas w*R..(w+1)*R-1, so
      # it reads the w-th block of the global batch.
      rows = GLOBAL_BATCH // input_context.num_input_pipelines
      block = slice(input_context.input_pipeline_id * rows,
                    (input_context.input_pipeline_id + 1) * rows)
      features = {k: v[block] for k, v in features.items()}
      labels = {k: v[block] for k, v in labels.items()}
    ds = tf.data.Dataset.from_tensor_slices((features, labels))
    return ds.batch(batch, drop_remainder=True).repeat()

  return fn


def reported_values(model_dir):
  """The step's `loss` (the estimator's summary) and the host call's summaries.

  Keys: `__loss__`, and `__summary__/TAG` for every scalar the model_fn's
  host call wrote (the replicas' means under a strategy).
  """
  values = {'__loss__': np.nan}
  for path in glob.glob(os.path.join(model_dir, 'events.out.tfevents*')):
    for event in tf.train.summary_iterator(path):
      for value in event.summary.value:
        if value.tag == 'loss' and event.step == 1:
          values['__loss__'] = value.simple_value
        elif value.HasField('tensor'):
          values['__summary__/' + value.tag] = tf.make_ndarray(value.tensor)
  return {k: np.asarray(v, np.float32) for k, v in values.items()}


def main(argv):
  reordered = argv[1] == 'reordered'
  replicas = 0 if reordered else int(argv[1])
  out_dir, init_dir = argv[2], argv[3]
  cases = [json.loads(c) for c in argv[4:]]
  tf.disable_v2_behavior()
  for case in cases:
    model_dir = os.path.join(out_dir, case['name'])
    flags = dict(BASE, **case['flags'])
    if replicas < 0:
      flags.update(distribution='multi_worker')
    elif replicas:
      flags.update(distribution='mirrored', num_cpu_replicas=replicas)
    else:
      flags.update(distribution='one_device')
    hp = hparams_flags.default_hparams(model_dir=model_dir, **flags)
    if init_dir != '-' and distribute.is_chief(hp):
      os.makedirs(model_dir, exist_ok=True)  # a worker may have made it
      for path in glob.glob(os.path.join(init_dir, case['name'],
                                         'model.ckpt-0.*')):
        shutil.copy(path, model_dir)
      tf.train.update_checkpoint_state(model_dir, 'model.ckpt-0')
    hparams_flags.validate(hp)
    strategy = distribute.make_strategy(hp)
    estimator = run.build_estimator(hp, None, NUM_CLASSES, NUM_EXAMPLES,
                                    strategy=strategy)
    if replicas < 0:
      tf.estimator.train_and_evaluate(
          estimator, tf.estimator.TrainSpec(input_fn(hp), max_steps=1),
          tf.estimator.EvalSpec(input_fn(hp), steps=1))
      if not distribute.is_chief(hp):
        continue
    else:
      estimator.train(input_fn(hp, reordered), max_steps=1)
    reader = tf.train.load_checkpoint(os.path.join(model_dir, 'model.ckpt-1'))
    values = {name: reader.get_tensor(name)
              for name in reader.get_variable_to_shape_map()}
    # The estimator's cached summary writers may still buffer the last events.
    tf.summary.FileWriterCache.clear()
    values.update(reported_values(model_dir))
    np.savez(os.path.join(model_dir, 'step1.npz'), **values)


if __name__ == '__main__':
  main(sys.argv)
