"""Per-host tf.data input pipelines for TPUEstimator.

A source (data_sources.py; the contract is in source_common.py) yields raw
examples `{'image', 'label', 'id'}` of this host's shard of a split.
`build_input_fn` turns a source into the batched `(features, labels)` that
model_fn consumes:

  features = {'image': float32 [B, S, S, 3 * V], 'id': int64 [B]}
  labels   = {'label': int32 [B], 'mask': float32 [B]}

V is `hp.views_per_example` in training; at eval it is 1, or 2 for contrastive
pretraining with --eval_contrastive: the eval crop and one training
augmentation, so contrastive metrics mean something at eval time.  Eval batches cover the whole
split: the stream is padded with mask-0 examples up to the last full batch.
"""

import tensorflow.compat.v1 as tf

import augment
import augment_device
import augment_policies
import data_sources
import schedule

AUTOTUNE = tf.data.experimental.AUTOTUNE


# ------------------------------------------------------------- pipelines


def _decode(image):
  if image.dtype == tf.string:
    image = tf.io.decode_image(image, channels=3, expand_animations=False)
  return image


def host_placement(params, input_context=None):
  """(host_index, num_hosts): TPU hosts, or tf.distribute input pipelines; (0, 1) on one device."""
  if input_context is not None:
    return input_context.input_pipeline_id, input_context.num_input_pipelines
  context = params.get('context') if params else None
  if context is None:
    return 0, 1
  return context.current_host, context.num_hosts


def _canvas_size(hp):
  return augment_device.device_canvas_size(hp.image_size, hp.device_crop_canvas_size)


def image_features(hp, image, is_training):
  """One example's image features: stacked views, or source image + crop boxes."""
  # The second form is training with --augment_on_device=crop_and_color: the
  # uint8 image, padded into its canvas when batched (batch_canvases).
  # Pixels stay integers until the crop is resized (less to convert).
  image = _decode(image)
  on_device = hp.augment_on_device if is_training else 'none'
  if on_device == 'crop_and_color':
    canvas = _canvas_size(hp)
    image = augment_device.fit_to_canvas(image, canvas)
    shape = tf.shape(image)
    return {'image': image,
            'crop_boxes': augment_device.sample_crop_boxes(shape,
                                                    hp.views_per_example,
                                                    canvas,
                                                    hp.crop_area_range),
            'image_extent': augment_device.canvas_extent(shape, canvas)}

  def train_view():
    return augment_policies.train_view(
        image, hp, device_colors=is_training and hp.color_on_device)

  if is_training and hp.uses_model_garden and hp.views_per_example > 1:
    # One traced copy of the policy draws every view: Model Garden's graphs
    # take seconds to trace and optimise, once per copy.
    views = tf.unstack(tf.map_fn(lambda _: train_view(),
                                 tf.range(hp.views_per_example),
                                 fn_output_signature=tf.float32))
  elif is_training:
    views = [train_view() for _ in range(hp.views_per_example)]
  else:
    views = [augment.preprocess_for_eval(image, hp.image_size,
                                         method=hp.eval_crop_method,
                                         crop_padding=hp.crop_padding)]
    if hp.is_contrastive and hp.eval_contrastive:
      views.append(train_view())
  return {'image': tf.concat(views, axis=-1)}


def build_input_fn(hp, is_training, num_eval_examples=None,
                   source=None):
  """Returns input_fn(params) for TPUEstimator (training or evaluation)."""

  def input_fn(params, input_context=None):
    """Builds this host's pipeline; params['batch_size'] is the per-host batch.

    Under a tf.distribute strategy `input_context` is set: one pipeline per
    worker reads its shard, and batches are per replica (the replicas of a
    worker take consecutive batches, so a global batch is R consecutive ones).
    """
    batch_size = params['batch_size']
    if input_context is not None:
      batch_size = input_context.get_per_replica_batch_size(batch_size)
    host_index, num_hosts = host_placement(params, input_context)
    src = source or data_sources.get_source(hp)
    split = hp.train_split if is_training else hp.resolved_eval_split
    ds = src.dataset(split, host_index, num_hosts, shuffle_files=is_training)
    if hp.cache_dataset:
      ds = ds.cache()
    id_dtype = tf.int32 if params.get('use_tpu') else tf.int64

    def finish(example, mask):
      features = image_features(hp, example['image'], is_training)
      features['id'] = tf.cast(example['id'], id_dtype)
      label = tf.cast(example['label'], tf.int32)
      labels = {'label': label, 'mask': tf.constant(mask, tf.float32)}
      return features, labels

    if is_training:
      buffer = batch_size * (50 if hp.image_size <= 32 else 10)
      ds = ds.shuffle(buffer, seed=hp.seed).repeat()
      ds = ds.map(lambda ex: finish(ex, 1.0), num_parallel_calls=AUTOTUNE,
                  deterministic=hp.deterministic_input)
    else:
      ds = ds.map(lambda ex: finish(ex, 1.0), num_parallel_calls=AUTOTUNE)
      ds = ds.concatenate(_padding(ds.element_spec)).take(
          _eval_examples_per_host(hp, num_eval_examples, num_hosts))
    if is_training and hp.augment_on_device == 'crop_and_color':
      ds = batch_canvases(ds, batch_size, _canvas_size(hp))
    else:
      ds = ds.batch(batch_size, drop_remainder=True)
    return ds.prefetch(AUTOTUNE)

  return input_fn


def batch_canvases(ds, batch_size, canvas_size):
  """Batches crop_and_color examples, padding each image into its canvas, bit-packed."""
  # padded_batch writes each image straight into the zeroed batch tensor:
  # one copy, where padding per example first would make two.
  padded_shapes = tf.nest.map_structure(lambda spec: spec.shape,
                                        ds.element_spec)
  padded_shapes[0]['image'] = tf.TensorShape([canvas_size, canvas_size, 3])
  ds = ds.padded_batch(batch_size, padded_shapes, drop_remainder=True)

  def pack(features, labels):
    features = dict(features, image=augment_device.pack_canvas(features['image']))
    return features, labels

  return ds.map(pack)


def _eval_examples_per_host(hp, num_eval_examples, num_hosts):
  if num_eval_examples is None:
    raise ValueError('num_eval_examples is required for an eval input_fn')
  steps = schedule.eval_steps(hp, num_eval_examples)
  return steps * hp.eval_batch_size // num_hosts


def _padding(element_spec):
  """An endless stream of all-zero, mask-0 examples shaped like the real ones."""
  zeros = tf.nest.map_structure(
      lambda spec: tf.zeros(spec.shape, spec.dtype), element_spec)
  zeros[1]['mask'] = tf.zeros([], tf.float32)
  return tf.data.Dataset.from_tensors(zeros).repeat()
