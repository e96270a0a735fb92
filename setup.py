"""Installs the contrastive-learning TPUEstimator package and its `contrastive-run` command."""

import setuptools

INSTALL_REQUIRES = [
    'tensorflow>=2.15,<2.16',
    'tensorflow-estimator==2.15.0',
    'tensorflow-hub==0.15.0',  # 0.16 dropped the TF1 Hub format we export.
    'tensorflow-datasets==4.9.4',
    'tensorflow-metadata==1.16.1',  # 1.21 needs protobuf>=5, TF 2.15 needs <5.
    'protobuf>=4.25,<5',
    'absl-py>=2.1,<3',
    'numpy>=1.23,<2',
    'cloud-tpu-client==0.10',
    'matplotlib==3.9.4',  # curves.png and --mode=preview (Agg, headless).
    # sparse_image_warp for --warp_probability; 0.23 is the last release and
    # supports TF 2.13-2.15 (the package is in maintenance, see README).
    'tensorflow-addons==0.23.0',
]
# AutoAugment / RandAugment come from TF Model Garden.  Its 2.15 release pulls
# ~45 packages (OpenCV, pandas, scikit-learn, TF Text; ~600 MB), so it is an
# extra: `pip install -e .[augment]`.  tf-models-no-deps has no 2.15 release.
AUGMENT_REQUIRES = ['tf-models-official==2.15.0']

setuptools.setup(
    name='tpu-contrastive',
    version='0.1.0',
    description=('SimCLR v1/v2, SupCon, RPC, FNC and SogCLR on TPUEstimator '
                 '(TF 2.15, tf.compat.v1).'),
    python_requires='>=3.9,<3.12',
    py_modules=['run', 'model_fn', 'model', 'data_input', 'hparams_flags',
                'names', 'schedule', 'replica', 'distribute', 'atomic_files',
                'augment', 'optimization', 'export', 'saved_model_export',
                'checkpoint_restore', 'knn', 'nonfinite_guard', 'flags_record',
                'precision', 'loss_scale',
                'trainer_lock', 'console', 'progress', 'linear_probe',
                'feature_monitor', 'run_report', 'preview', 'doctor',
                'memory_queue', 'momentum_encoder', 'augment_policies',
                'augment_device', 'data_sources', 'source_common',
                'local_sources', 'tfds_source', 'image_folder',
                'tfrecord_source', 'upstream_flags'],
    packages=['losses', 'resnet', 'imagenet_subsets'],
    package_data={'imagenet_subsets': ['*.txt']},
    install_requires=INSTALL_REQUIRES,
    extras_require={'test': ['pytest==8.3.4', 'pytest-xdist==3.6.1'],
                    'augment': AUGMENT_REQUIRES},
    entry_points={'console_scripts': ['contrastive-run=run:console_main']},
)
