"""TPUEstimator model_fn: views -> model.forward -> supervised and contrastive losses -> spec."""

import functools
import weakref

import tensorflow.compat.v1 as tf
import tensorflow.compat.v2 as tf2

import augment
import augment_device
import checkpoint_restore
import distribute
import loss_scale
import losses
from losses import core
import memory_queue
import model
import momentum_encoder
import nonfinite_guard
import optimization
import precision
import progress
import replica


def _split_views(images):
  """[B, S, S, 3V] -> list of V tensors [B, S, S, 3]."""
  num_views = int(images.shape[-1]) // 3
  return tf.split(images, num_views, axis=-1)


def training_views(hp, features, images):
  """The V training view batches, finished on the device as the flags ask."""
  # SimCLR blurs whole batches here; --defer_blurring=False blurs on the host.
  blur_probability = hp.view_blur_probability if hp.defer_blurring else 0.
  if hp.augment_on_device == 'none':
    views = _split_views(images)
    if blur_probability > 0:
      views = [augment.batch_random_blur(v, hp.image_size, blur_probability)
               for v in views]
    return views
  if hp.augment_on_device == 'crop_and_color':
    canvas = augment_device.device_canvas_size(hp.image_size,
                                        hp.device_crop_canvas_size)
    crop = dict(sources=augment_device.unpack_canvas(images, canvas),
                crop_boxes=features['crop_boxes'],
                source_extents=features['image_extent'])
    views = None
  else:
    crop, views = {}, _split_views(images)
  return augment_device.device_train_views(
      views, hp.image_size,
      color_distort=(hp.is_pretrain and hp.color_on_device and
                     not hp.augmentation_disabled),
      color_jitter_strength=hp.augmentation_strength,
      blur_probability=blur_probability, **crop)


# Per graph: the variables model.forward made (see _model_variables).
_forward_variables = weakref.WeakKeyDictionary()


def _model_variables(num_before):
  """The global variables model.forward made after the first `num_before`.

  Under a strategy the first replica makes them and the others reuse them
  (and make none): they get the first replica's list, so every replica
  restores --checkpoint into the same variables.
  """
  graph = tf.get_default_graph()
  made = tf.global_variables()[num_before:]
  if made:
    _forward_variables.setdefault(graph, made)
    return made
  return _forward_variables.get(graph, [])


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


def _supervised_loss(hp, logits_sup, label, mask, num_views, local_batch,
                     num_classes):
  """Cross-entropy of the supervised head over the valid rows; (loss, train accuracy)."""
  logits = logits_sup[:local_batch * num_views]
  label = tf.tile(label, [num_views])
  loss = tf.losses.softmax_cross_entropy(
      tf.one_hot(label, num_classes), logits, weights=tf.tile(mask, [num_views]),
      label_smoothing=hp.label_smoothing,
      reduction=tf.losses.Reduction.SUM_BY_NONZERO_WEIGHTS,
      loss_collection=None)
  predicted = tf.argmax(logits, 1, output_type=tf.int32)
  accuracy = tf.reduce_mean(tf.cast(tf.equal(predicted, label), tf.float32))
  return loss, accuracy


def _memory_path(hp, features, views, label, ctx, bn_ctx):
  """Momentum-encoder embeddings and queue rows (a core.Memory), and the after-step op builder.

  The after-step op updates the EMA weights and pushes the global batch's
  momentum embeddings; it runs only on applied (finite) steps, after the
  optimizer, and reads the EMA weights and the queue only after this step's
  loss has used them.
  """
  num_views, local_batch = len(views), int(views[0].shape[0])
  encoder = momentum_encoder.MomentumEncoder(hp)
  ema = encoder.embed(tf.concat(views, axis=0), bn_ctx)
  ema = core.to_float32(tf.stack(tf.split(ema, num_views, axis=0), axis=1))
  if losses.normalizes_embeddings(hp):
    ema = core.l2_normalize(ema)
  current = ctx.all_gather(ema)  # [N, V, D]: every replica pushes the same rows
  queue = memory_queue.MemoryQueue(hp.memory_rows, int(ema.shape[-1]))
  pushed = num_views * local_batch * ctx.num_replicas
  # FNC contrasts with the newest K rows, the current batch's included.
  bank = queue.read(hp.memory_rows - pushed if hp.objective == 'fnc' else None)
  ids = features.get('id') if isinstance(features, dict) else None
  if ids is None:
    ids = -tf.ones([local_batch], tf.int32)
  all_labels = ctx.all_gather(tf.cast(tf.reshape(label, [local_batch]), tf.int32))
  all_ids = ctx.all_gather(tf.cast(tf.reshape(ids, [local_batch]), tf.int32))

  def after_step(apply_op):
    ema_update = encoder.update_op(after=[apply_op, current])
    push = queue.push_views(current, all_labels, all_ids,
                            after=[apply_op] + list(bank))
    return tf.group(ema_update, push)

  return core.Memory(ema, current, bank), after_step


def _contrastive_loss(hp, features, proj_out, label, num_views, ctx,
                      num_train_examples, is_training, memory=None):
  """The --loss objective on the projections, or None when it does not apply."""
  one_view_supcon = hp.objective == 'supcon' and is_training
  if not hp.is_contrastive or (num_views < 2 and not one_view_supcon):
    return None
  embeddings = tf.stack(tf.split(proj_out, num_views, axis=0), axis=1)
  ids = features.get('id') if isinstance(features, dict) else None
  return losses.contrastive_loss(
      hp, embeddings, ctx, labels=label, ids=ids,
      num_train_examples=num_train_examples, is_training=is_training,
      memory=memory)


def _predict_spec(outputs, features, local_batch, predict_keys):
  """PREDICT: the model outputs (or only `predict_keys`, plus label and mask)."""
  predictions = dict(outputs)
  if predict_keys is not None:
    predictions = {k: outputs[k][:local_batch] for k in predict_keys}
    for key in ('label', 'mask'):
      if isinstance(features, dict) and key in features:
        predictions[key] = features[key]
  return tf.estimator.tpu.TPUEstimatorSpec(
      tf.estimator.ModeKeys.PREDICT, predictions=predictions)


def _eval_spec(total_loss, reg_loss, label, mask, local_batch, logits_sup,
               contrast):
  """EVAL: the masked metrics of whatever the graph computes."""
  ones = tf.ones([local_batch])
  metric_args = {'mask': mask, 'reg_loss': reg_loss * ones}
  if logits_sup is not None:
    metric_args.update(label=label, logits_sup=logits_sup[:local_batch])
  if contrast is not None:
    accuracy = contrast.metrics.get('contrast_acc', tf.zeros([]))
    metric_args.update(contrast_loss=contrast.per_example,
                       contrast_acc=accuracy * ones)
  return tf.estimator.tpu.TPUEstimatorSpec(
      tf.estimator.ModeKeys.EVAL, loss=total_loss,
      eval_metrics=(_metric_fn, metric_args))


def _injected_fault(steps):
  """NaN at the listed global steps, 0 elsewhere (--inject_nonfinite_steps)."""
  step = tf.train.get_or_create_global_step()
  hit = tf.reduce_any(tf.equal(step, tf.constant(steps, step.dtype.base_dtype)))
  return tf.where(hit, tf.constant(float('nan')), tf.constant(0.0))


def _replica_means(ctx, values):
  """Each of `values` (name -> tensor) averaged over the replicas, in one all-reduce."""
  names = sorted(values)
  stacked = tf.stack([tf.reduce_mean(tf.cast(values[n], tf.float32))
                      for n in names])
  means = ctx.all_mean(tf.stop_gradient(stacked))
  return {name: means[i] for i, name in enumerate(names)}


def _train_spec(hp, params, ctx, terms, total_loss, variables, update_ops,
                summaries, model_variables, num_train_examples,
                after_step=None):
  """TRAIN: a guarded optimizer step after the BN/loss-state updates, summaries, restore scaffold.

  `after_step(apply_op)` (optional) builds ops that run after an applied step.
  """
  global_step = tf.train.get_or_create_global_step()
  lr = optimization.learning_rate(hp, global_step, num_train_examples)
  optimizer = optimization.get_optimizer(hp, lr)
  if params.get('use_tpu'):
    optimizer = tf.tpu.CrossShardOptimizer(optimizer)
  update_ops = list(update_ops) + tf.get_collection(tf.GraphKeys.UPDATE_OPS)
  scaler = (loss_scale.DynamicLossScale() if precision.uses_loss_scale(hp)
            else None)
  grads_and_vars = optimizer.compute_gradients(
      scaler.scale_loss(total_loss) if scaler else total_loss,
      var_list=variables)
  grads_and_vars = [(g, v) for g, v in grads_and_vars if g is not None]
  if scaler:  # LARS, the guard and the apply see the true gradients
    grads_and_vars = scaler.unscale(grads_and_vars)
  # Only the apply waits for the BN/SogCLR updates: making every gradient
  # op depend on them multiplies graph-building time on deep trunks.

  step_fn = None
  if tf.distribute.has_strategy():
    step_fn = distribute.guarded_apply_fn(optimizer, grads_and_vars,
                                          global_step)

  def apply():
    if step_fn:  # the gradients are already applied: only what follows
      return after_step(tf.no_op()) if after_step else tf.no_op()
    apply_op = optimizer.apply_gradients(grads_and_vars, global_step)
    return after_step(apply_op) if after_step else apply_op

  train_op, term_names = nonfinite_guard.guarded_train_op(
      apply,
      terms, [g for g, _ in grads_and_vars], global_step, ctx,
      hp.max_nonfinite_steps, update_ops, step_fn=step_fn, loss_scale=scaler)
  shown = dict(summaries, total_loss=total_loss)
  if tf.distribute.has_strategy():
    # The estimator runs replica 0's hooks only: show the replicas' mean, as
    # TPU's host call averages the cores' values.
    shown = _replica_means(ctx, shown)
  train_op = tf.group(train_op, progress.record_train_values(
      {name: shown[name] for name in terms}, lr))
  guard_hook = nonfinite_guard.NonFiniteGuardHook(
      term_names, hp.max_nonfinite_steps, hp.model_dir,
      check_weights_every=max(1, hp.train_summary_steps or 100))
  scaffold_fn = None
  if hp.checkpoint and not hp.is_pretrain:
    scaffold_fn = functools.partial(_checkpoint_scaffold, hp, model_variables)
  return tf.estimator.tpu.TPUEstimatorSpec(
      tf.estimator.ModeKeys.TRAIN,
      loss=nonfinite_guard.reported_loss(total_loss), train_op=train_op,
      # Under a strategy every replica builds it (hook lists must match) and
      # the estimator runs replica 0's hooks only; a multi_worker non-chief
      # writes no summaries (its own would mix into the chief's curves).
      host_call=(_host_call(hp, dict(shown, learning_rate=lr),
                            params.get('use_tpu'))
                 if distribute.is_chief(hp) else None),
      scaffold_fn=scaffold_fn, training_hooks=[guard_hook])


def build_model_fn(hp, num_classes, num_train_examples, predict_keys=None):
  """Returns the TPUEstimator model_fn for hyperparameters `hp`.

  `predict_keys`: the outputs PREDICT returns (None: all of them); features
  `label` and `mask`, when the input has them, are passed through too.  On
  TPU every prediction goes through the outfeed, so keep it small.
  """

  def model_fn(features, labels, mode, params):
    """Builds the train, eval or predict graph (per replica under a strategy)."""
    with distribute.state_variables_per_replica():
      return replica_model_fn(features, labels, mode, params)

  def replica_model_fn(features, labels, mode, params):
    is_training = mode == tf.estimator.ModeKeys.TRAIN
    ctx = replica.ReplicaContext.from_params(params)
    # Eval runs without cross-replica gathering (per-core metrics are averaged).
    loss_ctx = ctx if is_training else replica.ReplicaContext.local()
    bn_ctx = ctx if (hp.global_bn and is_training) else replica.ReplicaContext.local()
    images = features['image'] if isinstance(features, dict) else features
    views = training_views(hp, features, images) if is_training else (
        _split_views(images))
    num_views = len(views)
    local_batch = int(views[0].shape[0])  # static: batches drop the remainder

    num_before = len(tf.global_variables())
    outputs = model.forward(hp, tf.concat(views, axis=0), is_training, bn_ctx,
                            num_classes)
    model_variables = _model_variables(num_before)
    if mode == tf.estimator.ModeKeys.PREDICT:
      return _predict_spec(outputs, features, local_batch, predict_keys)

    label, mask = labels['label'], labels['mask']
    logits_sup = outputs.get('logits_sup')
    terms, summaries, update_ops = {}, {}, []
    memory, after_step = None, None
    if is_training and hp.uses_memory:
      memory, after_step = _memory_path(hp, features, views, label, loss_ctx,
                                        bn_ctx)
    if logits_sup is not None:
      # Every view in training, the eval crop (view 0) at eval.
      terms['supervised_loss'], summaries['train_label_accuracy'] = (
          _supervised_loss(hp, logits_sup, label, mask,
                           num_views if is_training else 1, local_batch,
                           num_classes))
    contrast = _contrastive_loss(hp, features, outputs['proj_head_output'],
                                 label, num_views, loss_ctx,
                                 num_train_examples, is_training, memory)
    if contrast is not None:
      terms['contrast_loss'] = contrast.loss
      summaries.update(contrast.metrics)
      update_ops += list(contrast.update_ops)
    if is_training and hp.inject_nonfinite_steps:
      terms['injected_fault'] = _injected_fault(hp.inject_nonfinite_steps)
    variables = model.trainable_variables(hp)
    reg_loss = optimization.weight_decay_loss(hp, variables)
    total_loss = tf.add_n(list(terms.values()) + [reg_loss])

    if mode == tf.estimator.ModeKeys.EVAL:
      return _eval_spec(total_loss, reg_loss, label, mask, local_batch,
                        logits_sup, contrast)
    summaries.update(terms, regularization_loss=reg_loss)
    return _train_spec(hp, params, loss_ctx, dict(terms, regularization_loss=reg_loss),
                       total_loss, variables, update_ops, summaries,
                       model_variables, num_train_examples, after_step)

  return model_fn
