"""Export checks, each run by tests/test_export.py in a fresh Python process.

Usage: python tests/export_checks.py CHECK MODEL_DIR STEP
TF1 checks (`predict`, `hub_tf1`, `hub_train_step`) disable v2 behaviour;
TF2 checks (`hub_tf2`, `saved_model`, `simclr_call`, `bad_inputs`) run eagerly: the two cannot share a
process.  `predict` writes the estimator's predictions on fixed images to
MODEL_DIR/predictions.npz; the other checks compare against them.
A failed check raises (non-zero exit, the assertion on stderr).
"""

import json
import os
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
TOLERANCE = dict(rtol=1e-5, atol=1e-5)


def _images(model_dir):
  with open(os.path.join(model_dir, 'flags.json')) as f:
    size = json.load(f)['image_size']
  return np.random.RandomState(0).rand(4, size, size, 3).astype(np.float32)


def _predictions(model_dir):
  return dict(np.load(os.path.join(model_dir, 'predictions.npz')))


def _v1():
  import tensorflow.compat.v1 as tf  # pylint: disable=g-import-not-at-top
  tf.disable_v2_behavior()
  return tf


def predict(model_dir, step):
  """Estimator predictions of checkpoint `step` on the fixed images."""
  tf = _v1()
  import hparams_flags  # pylint: disable=g-import-not-at-top
  import run  # pylint: disable=g-import-not-at-top
  with open(os.path.join(model_dir, 'flags.json')) as f:
    hp = hparams_flags.HParams(**json.load(f))
  images = _images(model_dir)
  estimator = run.build_estimator(hp, None, 10, 32)
  outputs = list(estimator.predict(
      lambda params: tf.data.Dataset.from_tensor_slices(
          {'image': images}).batch(len(images), drop_remainder=True),
      checkpoint_path=os.path.join(model_dir, 'model.ckpt-%d' % step),
      yield_single_examples=False))[0]
  np.savez(os.path.join(model_dir, 'predictions.npz'), **outputs)


def hub_tf1(model_dir, step):
  """hub.Module (both signatures) equals the estimator; expected image size."""
  tf = _v1()
  import tensorflow_hub as hub  # pylint: disable=g-import-not-at-top
  path = os.path.join(model_dir, 'hub', str(step))
  images = _images(model_dir)
  expected = _predictions(model_dir)
  with tf.Graph().as_default(), tf.Session() as sess:
    module = hub.Module(path)
    assert set(module.get_signature_names()) == {'default',
                                                 'image_feature_vector'}
    assert hub.get_expected_image_size(module) == list(images.shape[1:3])
    outputs = module(tf.constant(images), as_dict=True)
    features = module(tf.constant(images), signature='image_feature_vector',
                      as_dict=True)
    sess.run(tf.global_variables_initializer())
    outputs, features = sess.run([outputs, features])
  assert set(outputs) == set(expected) | {'default'}, sorted(outputs)
  for key in expected:
    np.testing.assert_allclose(outputs[key], expected[key], err_msg=key,
                               **TOLERANCE)
  np.testing.assert_array_equal(outputs['default'], outputs['final_avg_pool'])
  np.testing.assert_array_equal(features['default'], outputs['default'])


def hub_train_step(model_dir, step):
  """hub.Module(tags={'train'}, trainable=True): one SGD step changes weights, lowers a loss."""
  tf = _v1()
  import tensorflow_hub as hub  # pylint: disable=g-import-not-at-top
  path = os.path.join(model_dir, 'hub', str(step))
  images = _images(model_dir)
  labels = np.arange(len(images)) % 3
  with tf.Graph().as_default(), tf.Session() as sess:
    module = hub.Module(path, tags={'train'}, trainable=True)
    features = module(tf.constant(images))
    logits = tf.layers.dense(features, 3)
    loss = tf.losses.sparse_softmax_cross_entropy(labels, logits)
    encoder = [v for v in tf.trainable_variables()
               if v.op.name.startswith('module/base_model/')]
    assert encoder, 'the encoder variables are not trainable'
    update_ops = tf.get_collection(tf.GraphKeys.UPDATE_OPS)
    assert update_ops, 'training BN adds no moving-average updates'
    with tf.control_dependencies(update_ops):
      train_op = tf.train.GradientDescentOptimizer(0.05).minimize(loss)
    sess.run(tf.global_variables_initializer())
    before_loss, before = sess.run([loss, encoder])
    sess.run(train_op)
    after_loss, after = sess.run([loss, encoder])
  changed = sum(not np.array_equal(b, a) for b, a in zip(before, after))
  assert changed == len(encoder), (changed, len(encoder))
  assert after_loss < before_loss, (before_loss, after_loss)


def hub_tf2(model_dir, step):
  """TF2 hub.load and hub.KerasLayer on the TF1 module equal the estimator."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  import tensorflow_hub as hub  # pylint: disable=g-import-not-at-top
  path = os.path.join(model_dir, 'hub', str(step))
  images = tf.constant(_images(model_dir))
  expected = _predictions(model_dir)
  outputs = hub.load(path).signatures['default'](images=images)
  for key in expected:
    np.testing.assert_allclose(outputs[key].numpy(), expected[key],
                               err_msg=key, **TOLERANCE)
  layer = hub.KerasLayer(path, signature='default', output_key='default')
  np.testing.assert_allclose(layer(images).numpy(), expected['final_avg_pool'],
                             **TOLERANCE)


def saved_model(model_dir, step):
  """TF2 SavedModel: tagless load, signatures, KerasLayer fine-tuning."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  import tensorflow_hub as hub  # pylint: disable=g-import-not-at-top
  path = os.path.join(model_dir, 'saved_model', str(step))
  images = tf.constant(_images(model_dir))
  expected = _predictions(model_dir)

  def unit(x):
    return x / np.linalg.norm(x, axis=-1, keepdims=True)

  loaded = tf.saved_model.load(path)
  assert set(loaded.signatures) == {'serving_default', 'contrastive_eval',
                                    'contrastive_train'}
  outputs = {k: v.numpy() for k, v in
             loaded.signatures['serving_default'](images=images).items()}
  wanted = {'unnormalized_embeddings': expected['final_avg_pool'],
            'embeddings': unit(expected['final_avg_pool']),
            'unnormalized_projection': expected['proj_head_output'],
            'projection': unit(expected['proj_head_output']),
            'logits': expected['logits_sup']}
  assert set(outputs) == set(wanted), sorted(outputs)
  for key, value in wanted.items():
    np.testing.assert_allclose(outputs[key], value, err_msg=key, **TOLERANCE)
  train_out = loaded.signatures['contrastive_train'](images=images)
  assert not np.allclose(train_out['unnormalized_embeddings'].numpy(),
                         expected['final_avg_pool']), 'train BN == inference BN'

  layer = hub.KerasLayer(path, trainable=True)
  np.testing.assert_allclose(layer(images, training=False).numpy(),
                             expected['final_avg_pool'], **TOLERANCE)
  head = tf.keras.layers.Dense(3)
  labels = tf.constant(np.arange(images.shape[0]) % 3)
  optimizer = tf.keras.optimizers.SGD(0.05)

  def loss_fn():
    logits = head(layer(images, training=True))
    return tf.reduce_mean(tf.keras.losses.sparse_categorical_crossentropy(
        labels, logits, from_logits=True))

  before_loss = float(loss_fn())
  encoder = layer.trainable_variables
  assert encoder and all(v.name.startswith('base_model/') for v in encoder)
  before = [v.numpy() for v in encoder]
  moving = [v for v in layer.variables if 'moving_mean' in v.name][0]
  moving_before = moving.numpy()
  with tf.GradientTape() as tape:
    loss = loss_fn()
  variables = encoder + head.trainable_variables
  grads = tape.gradient(loss, variables)
  assert all(g is not None for g in grads)
  optimizer.apply_gradients(zip(grads, variables))
  changed = sum(not np.array_equal(b, v.numpy())
                for b, v in zip(before, encoder))
  assert changed == len(encoder), (changed, len(encoder))
  assert not np.array_equal(moving_before, moving.numpy())
  assert float(loss_fn()) < before_loss


def simclr_call(model_dir, step):
  """SimCLR-style `model(images, trainable=...)`: the dict of named outputs; __call__(training=) unchanged."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  path = os.path.join(model_dir, 'saved_model', str(step))
  images = tf.constant(_images(model_dir))
  expected = _predictions(model_dir)
  loaded = tf.saved_model.load(path)
  outputs = {k: v.numpy() for k, v in loaded(images, trainable=False).items()}
  # The estimator predicts every named output: SimCLR's keys, logits_sup
  # included (this run trains a linear head while pretraining).
  assert set(outputs) == set(expected) == {
      'initial_conv', 'initial_max_pool', 'block_group1', 'block_group2',
      'block_group3', 'block_group4', 'final_avg_pool', 'proj_head_input',
      'proj_head_output', 'logits_sup'}, sorted(outputs)
  for key in expected:
    assert outputs[key].shape == expected[key].shape, key
    np.testing.assert_allclose(outputs[key], expected[key], err_msg=key,
                               **TOLERANCE)
  # SimCLR's attribute lists the heads' variables too; KerasLayer's the encoder's.
  encoder = {v.name for v in loaded.trainable_variables}
  every = {v.name for v in loaded.trainable_variables_list}
  assert encoder < every, sorted(every - encoder)
  assert all(not n.startswith('base_model/') for n in every - encoder)
  # The reusable-SavedModel call still returns the features alone.
  for features in (loaded(images), loaded(images, training=False),
                   loaded(images, False)):
    np.testing.assert_allclose(features.numpy(), expected['final_avg_pool'],
                               **TOLERANCE)
  # trainable=True runs batch norm on the batch, as contrastive_train does.
  train = {k: v.numpy() for k, v in loaded(images, trainable=True).items()}
  assert set(train) == set(expected), sorted(train)
  train_sig = loaded.signatures['contrastive_train'](images=images)
  np.testing.assert_allclose(train['final_avg_pool'],
                             train_sig['unnormalized_embeddings'].numpy(),
                             **TOLERANCE)
  assert not np.allclose(train['final_avg_pool'], expected['final_avg_pool'])
  # The SimCLR colab's linear head on frozen features: one step lowers the loss.
  head = tf.keras.layers.Dense(3)
  labels = tf.constant(np.arange(images.shape[0]) % 3)

  def loss_fn():
    features = loaded(images, trainable=False)['final_avg_pool']
    return tf.reduce_mean(tf.keras.losses.sparse_categorical_crossentropy(
        labels, head(features), from_logits=True))

  before = float(loss_fn())
  with tf.GradientTape() as tape:
    loss = loss_fn()
  grads = tape.gradient(loss, head.trainable_variables)
  # A step small against the squared feature norm (the features are not
  # normalised), so that it cannot overshoot.
  scale = np.mean(np.sum(outputs['final_avg_pool'] ** 2, axis=-1))
  tf.keras.optimizers.SGD(0.1 / scale).apply_gradients(
      zip(grads, head.trainable_variables))
  assert float(loss_fn()) < before


def bad_inputs(model_dir, step):
  """A wrong rank, channel count or dtype raises a clear error; the process lives on."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  loaded = tf.saved_model.load(os.path.join(model_dir, 'saved_model',
                                            str(step)))
  serve = loaded.signatures['serving_default']
  size = _images(model_dir).shape[1]
  for bad in (np.zeros([size, size, 3], np.float32),
              np.zeros([2, size, size, 1], np.float32),
              np.zeros([2, size, size, 3], np.uint8)):
    try:
      serve(images=tf.constant(bad))
    except (tf.errors.InvalidArgumentError, ValueError, TypeError) as e:
      text = str(e)
      # Shape errors are ours; the dtype error is TensorFlow's own
      # ("expected to be a float tensor but is a uint8 tensor").
      expected = ('[batch, height, width, 3]' if bad.dtype == np.float32
                  else 'float tensor')
      assert expected in text, text
    else:
      raise AssertionError('accepted images of shape %s, dtype %s' %
                           (bad.shape, bad.dtype))
    serve(images=tf.constant(_images(model_dir)))  # still works after it


if __name__ == '__main__':
  check, model_dir_arg, step_arg = sys.argv[1:]
  globals()[check](model_dir_arg, int(step_arg))
  print('ok: %s' % check)
