"""ResNet v1 trunks with replica-aware (global) batch normalisation.

`resnet.batch_norm` is the module (its layer is `resnet.batch_norm.batch_norm`);
the trunk API is re-exported from `resnet.network`.
"""

from resnet import batch_norm
from resnet import network
from resnet.network import ENDPOINT_NAMES
from resnet.network import feature_dim
from resnet.network import resnet_v1
