"""TPUEstimator model_fn: ResNet -> projection head -> contrastive loss (+ supervised head)."""

import functools
import re

import tensorflow.compat.v1 as tf
import tensorflow.compat.v2 as tf2

import augment
import checkpoint_restore
import losses
import optimization
from losses import replica
import resnet

SUPERVISED_HEAD = 'head_supervised'
CONTRASTIVE_HEAD = 'head_contrastive'


def _dense(x, units, use_bias, zero_init=False):
  init = (tf.zeros_initializer() if zero_init
          else tf.random_normal_initializer(stddev=0.01))
  return tf.layers.dense(x, units, use_bias=use_bias, kernel_initializer=init,
                         bias_initializer=tf.zeros_initializer())


def _num_head_layers(hp):
  return {'none': 0, 'linear': 1}.get(hp.proj_head_mode, hp.num_proj_layers)


def _head_layer_trains(hp, layer):
  """Whether projection-head layer `layer` trains (in finetune: those below ft_proj_selector)."""
  if hp.is_pretrain:
    return True
  selector = hp.ft_proj_selector
  return layer < (_num_head_layers(hp) if selector < 0 else selector)


def projection_head(hp, hiddens, is_training, ctx):
  """SimCLR projection head; returns (output, [encoder output, layer 1, ...]).

  In finetune the layers above ft_proj_selector feed nothing that trains: they
  keep their restored weights and run BN in inference mode.
  """
  outputs = [hiddens]
  x = hiddens
  bn = lambda x, j, center: resnet.batch_norm.batch_norm(  # pylint: disable=g-long-lambda
      x, is_training and _head_layer_trains(hp, j), ctx,
      decay=hp.batch_norm_decay, center=center)
  with tf.variable_scope(CONTRASTIVE_HEAD):
    if hp.proj_head_mode == 'linear':
      with tf.variable_scope('l_0'):
        x = bn(_dense(x, hp.proj_out_dim, use_bias=False), 0, center=False)
      outputs.append(x)
    elif hp.proj_head_mode == 'nonlinear':
      width = int(hiddens.shape[-1])
      for j in range(hp.num_proj_layers):
        last = j == hp.num_proj_layers - 1
        with tf.variable_scope('nl_%d' % j):
          x = _dense(x, hp.proj_out_dim if last else width, use_bias=False)
          x = bn(x, j, center=not last)
          if not last:
            x = tf.nn.relu(x)
        outputs.append(x)
  return tf.identity(x, 'proj_head_output'), outputs


def supervised_head(hp, inputs, num_classes):
  """The linear classifier `head_supervised`."""
  with tf.variable_scope(SUPERVISED_HEAD):
    with tf.variable_scope('linear_layer'):
      logits = _dense(inputs, num_classes, use_bias=True,
                      zero_init=hp.zero_init_logits_layer)
  for v in tf.trainable_variables(SUPERVISED_HEAD):
    tf.add_to_collection('trainable_variables_inblock_5', v)
  return logits


def _split_views(images):
  """[B, S, S, 3V] -> list of V tensors [B, S, S, 3]."""
  num_views = int(images.shape[-1]) // 3
  return tf.split(images, num_views, axis=-1)


_HEAD_LAYER = re.compile(r'%s/n?l_(\d+)/' % CONTRASTIVE_HEAD)


def _frozen_head_variable(hp, variable):
  layer = _HEAD_LAYER.match(variable.op.name)
  return bool(layer) and not _head_layer_trains(hp, int(layer.group(1)))


def _training_views(hp, features, images):
  """The V training view batches, finished on the device as the flags ask."""
  blur = hp.is_pretrain and hp.use_blur  # SimCLR blurs whole batches here
  if hp.augment_on_device == 'none':
    views = _split_views(images)
    if blur:
      views = [augment.batch_random_blur(v, hp.image_size) for v in views]
    return views
  if hp.augment_on_device == 'crop_and_color':
    canvas = augment.device_canvas_size(hp.image_size,
                                        hp.device_crop_canvas_size)
    crop = dict(sources=augment.unpack_canvas(images, canvas),
                crop_boxes=features['crop_boxes'],
                source_extents=features['image_extent'])
    views = None
  else:
    crop, views = {}, _split_views(images)
  return augment.device_train_views(
      views, hp.image_size, color_distort=hp.is_pretrain,
      color_jitter_strength=hp.color_jitter_strength, blur=blur, **crop)


def _trainable_variables(hp):
  """Variables that the optimizer updates.

  In finetune, fine_tune_after_block freezes the blocks up to it, and the
  projection-head layers from ft_proj_selector up stay frozen.
  """
  variables = tf.trainable_variables()
  if hp.is_pretrain:
    return variables
  variables = [v for v in variables if not _frozen_head_variable(hp, v)]
  if hp.fine_tune_after_block < 0:
    return variables
  frozen = set()
  for k in range(hp.fine_tune_after_block + 1):
    frozen.update(id(v) for v in tf.get_collection(
        'trainable_variables_inblock_%d' % k))
  return [v for v in variables if id(v) not in frozen]


def _checkpoint_scaffold(hp, model_variables):
  """A scaffold whose init takes the --variable_schema variables from --checkpoint.

  A model_dir that already holds a checkpoint resumes from it instead, and
  --checkpoint is not read at all.
  """
  resume = checkpoint_restore.resume_checkpoint(hp)
  if resume:
    tf.logging.info('Resuming from %s; --checkpoint is not used.', resume)
  else:
    checkpoint_restore.init_from_checkpoint(hp, model_variables)
  return tf.train.Scaffold()


def _host_call(hp, tensors, use_tpu):
  """TensorBoard summaries written on the host every train_summary_steps.

  On TPU, TPUConfig.experimental_host_call_every_n_steps already runs the
  host call every train_summary_steps; off TPU it runs every step, so the
  writer records only every train_summary_steps-th one.
  """
  if not hp.train_summary_steps:
    return None
  names = sorted(tensors)
  step = tf.reshape(tf.train.get_global_step(), [1])
  args = [step] + [tf.reshape(tf.cast(tensors[n], tf.float32), [1])
                   for n in names]
  model_dir, every = hp.model_dir, hp.train_summary_steps

  def host_fn(step, *values):
    step = step[0]
    writer = tf2.summary.create_file_writer(model_dir, max_queue=100)
    record = True if use_tpu else tf.equal(step % every, 0)
    with writer.as_default(), tf2.summary.record_if(record):
      for name, value in zip(names, values):
        tf2.summary.scalar(name, tf.reduce_mean(value), step=step)
      return tf.summary.all_v2_summary_ops()

  return host_fn, args


def _metric_fn(mask, reg_loss, label=None, logits_sup=None, contrast_loss=None,
               contrast_acc=None):
  """Eval metrics of whatever the graph computes, each weighted by the padding mask."""
  metrics = {'regularization_loss': tf.metrics.mean(reg_loss, mask)}
  if logits_sup is not None:
    predicted = tf.argmax(logits_sup, axis=1, output_type=tf.int32)
    top5 = tf.cast(tf.nn.in_top_k(logits_sup, label, k=5), tf.float32)
    metrics['label_top_1_accuracy'] = tf.metrics.accuracy(label, predicted, mask)
    metrics['label_top_5_accuracy'] = tf.metrics.mean(top5, mask)
  if contrast_loss is not None:
    metrics['contrast_loss'] = tf.metrics.mean(contrast_loss, mask)
    metrics['contrastive_top_1_accuracy'] = tf.metrics.mean(contrast_acc, mask)
  return metrics


def forward(hp, images, is_training, bn_ctx, num_classes):
  """Encoder -> projection head -> supervised head; the named outputs.

  Outputs: the ResNet endpoints (initial_conv, initial_max_pool,
  block_group1..4, final_avg_pool), proj_head_input, proj_head_output and,
  when a supervised head exists, logits_sup — fed exactly as in training
  (ft_proj_selector's head layer in finetune).  Shared by model_fn and the
  exports so they cannot drift apart.
  """
  freeze_encoder = (not hp.is_pretrain) and hp.fine_tune_after_block >= 4
  with tf.variable_scope('base_model'):
    encoder = resnet.resnet_v1(
        hp.resnet_depth, hp.width_multiplier, cifar_stem=hp.image_size <= 32,
        batch_norm_decay=hp.batch_norm_decay, ctx=bn_ctx,
        fine_tune_after_block=-1 if hp.is_pretrain else hp.fine_tune_after_block,
        sk_ratio=hp.sk_ratio, se_ratio=hp.se_ratio)
    # bfloat16 trunk: the layers create float32 variables and cast them to the
    # activation dtype (what tf.tpu.bfloat16_scope does); BN moments are
    # float32.  Endpoints are handed out as float32.
    if hp.use_bfloat16:
      images = tf.cast(images, tf.bfloat16)
    hiddens, endpoints = encoder(images,
                                 is_training=is_training and not freeze_encoder)
    endpoints = {k: tf.cast(v, tf.float32) for k, v in endpoints.items()}
  hiddens = tf.cast(hiddens, tf.float32)
  proj_out, head_outputs = projection_head(hp, hiddens, is_training, bn_ctx)
  if not hp.is_pretrain:
    sup_input = head_outputs[hp.ft_proj_selector]
  elif hp.is_contrastive:
    sup_input = tf.stop_gradient(hiddens)  # online linear evaluation
  else:
    sup_input = hiddens  # the supervised cross-entropy baseline
  outputs = dict(endpoints)
  outputs.update(final_avg_pool=hiddens, proj_head_input=hiddens,
                 proj_head_output=proj_out)
  if not hp.is_contrastive or hp.lineareval_while_pretraining:
    outputs['logits_sup'] = supervised_head(hp, sup_input, num_classes)
  return outputs


def build_model_fn(hp, num_classes, num_train_examples, predict_keys=None):
  """Returns the TPUEstimator model_fn for hyperparameters `hp`.

  `predict_keys`: the outputs PREDICT returns (None: all of them); features
  `label` and `mask`, when the input has them, are passed through too.  On
  TPU every prediction goes through the outfeed, so keep it small.
  """

  def model_fn(features, labels, mode, params):
    """Builds the train, eval or predict graph."""
    is_training = mode == tf.estimator.ModeKeys.TRAIN
    ctx = replica.ReplicaContext.from_params(params)
    # Eval runs without cross-replica gathering (per-core metrics are averaged).
    loss_ctx = ctx if is_training else replica.ReplicaContext.local()
    bn_ctx = ctx if (hp.global_bn and is_training) else replica.ReplicaContext.local()
    if isinstance(features, dict):
      images = features['image']
    else:
      images = features
    views = _training_views(hp, features, images) if is_training else (
        _split_views(images))
    num_views = len(views)
    local_batch = int(views[0].shape[0])  # static: batches drop the remainder
    x = tf.concat(views, axis=0)

    num_before = len(tf.global_variables())
    outputs = forward(hp, x, is_training, bn_ctx, num_classes)
    model_variables = tf.global_variables()[num_before:]
    proj_out = outputs['proj_head_output']
    logits_sup = outputs.get('logits_sup')

    if mode == tf.estimator.ModeKeys.PREDICT:
      predictions = dict(outputs)
      if predict_keys is not None:
        predictions = {k: outputs[k][:local_batch] for k in predict_keys}
        for key in ('label', 'mask'):
          if isinstance(features, dict) and key in features:
            predictions[key] = features[key]
      return tf.estimator.tpu.TPUEstimatorSpec(mode, predictions=predictions)

    label = labels['label']
    mask = labels['mask']
    # Supervised loss: every view in training, the eval crop (view 0) at eval.
    sup_views = num_views if is_training else 1
    sup_label = tf.tile(label, [sup_views])
    sup_mask = tf.tile(mask, [sup_views])
    losses_to_add = {}
    metrics = {}
    update_ops = []
    if logits_sup is not None:
      logits_used = logits_sup[:local_batch * sup_views]
      sup_loss = tf.losses.softmax_cross_entropy(
          tf.one_hot(sup_label, num_classes), logits_used, weights=sup_mask,
          label_smoothing=hp.label_smoothing,
          reduction=tf.losses.Reduction.SUM_BY_NONZERO_WEIGHTS,
          loss_collection=None)
      losses_to_add['supervised_loss'] = sup_loss
      metrics['train_label_accuracy'] = tf.reduce_mean(tf.cast(tf.equal(
          tf.argmax(logits_used, 1, output_type=tf.int32), sup_label),
                                                             tf.float32))
    contrast_per_example = contrast_acc = None
    one_view_supcon = hp.objective == 'supcon' and is_training
    if hp.is_contrastive and (num_views >= 2 or one_view_supcon):
      emb = tf.stack(tf.split(proj_out, num_views, axis=0), axis=1)
      ids = features.get('id') if isinstance(features, dict) else None
      out = losses.contrastive_loss(
          hp, emb, loss_ctx, labels=label, ids=ids,
          num_train_examples=num_train_examples, is_training=is_training)
      losses_to_add['contrast_loss'] = out.loss
      contrast_per_example = out.per_example
      contrast_acc = out.metrics.get('contrast_acc', tf.zeros([]))
      metrics.update(out.metrics)
      if is_training:
        update_ops += list(out.update_ops)

    variables = _trainable_variables(hp)
    reg_loss = optimization.weight_decay_loss(hp, variables)
    total_loss = tf.add_n(list(losses_to_add.values()) + [reg_loss])

    if mode == tf.estimator.ModeKeys.EVAL:
      ones = tf.ones([local_batch])
      metric_args = {'mask': mask, 'reg_loss': reg_loss * ones}
      if logits_sup is not None:
        metric_args.update(label=label, logits_sup=logits_sup[:local_batch])
      if contrast_per_example is not None:
        metric_args.update(contrast_loss=contrast_per_example,
                           contrast_acc=contrast_acc * ones)
      return tf.estimator.tpu.TPUEstimatorSpec(
          mode, loss=total_loss, eval_metrics=(_metric_fn, metric_args))

    global_step = tf.train.get_or_create_global_step()
    lr = optimization.learning_rate(hp, global_step, num_train_examples)
    optimizer = optimization.get_optimizer(hp, lr)
    if params.get('use_tpu'):
      optimizer = tf.tpu.CrossShardOptimizer(optimizer)
    update_ops += tf.get_collection(tf.GraphKeys.UPDATE_OPS)
    grads_and_vars = optimizer.compute_gradients(total_loss, var_list=variables)
    grads_and_vars = [(g, v) for g, v in grads_and_vars if g is not None]
    # Only the apply waits for the BN/SogCLR updates: making every gradient
    # op depend on them multiplies graph-building time on deep trunks.
    with tf.control_dependencies(update_ops):
      train_op = optimizer.apply_gradients(grads_and_vars, global_step)

    scaffold_fn = None
    if hp.checkpoint and not hp.is_pretrain:
      scaffold_fn = functools.partial(_checkpoint_scaffold, hp,
                                      model_variables)

    summaries = dict(metrics)
    summaries.update(losses_to_add)
    summaries.update(learning_rate=lr, regularization_loss=reg_loss,
                     total_loss=total_loss)
    return tf.estimator.tpu.TPUEstimatorSpec(
        mode, loss=total_loss, train_op=train_op,
        host_call=_host_call(hp, summaries, params.get('use_tpu')),
        scaffold_fn=scaffold_fn)

  return model_fn
