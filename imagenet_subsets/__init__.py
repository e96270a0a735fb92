"""ImageNet subsets: the published 1%/10% file lists and the ImageNet-100 class list (shipped
here, verified by sha256), and a cached per-split index for filtering a prepared imagenet2012
with dense example ids."""

from imagenet_subsets.imagenet100 import load_class_list
from imagenet_subsets.imagenet100 import SHIPPED_FILE as IMAGENET100_CLASSES_FILE
from imagenet_subsets.lists import load_file_names
from imagenet_subsets.lists import place_in_dir
from imagenet_subsets.lists import SHIPPED_DIR
from imagenet_subsets.lists import SubsetError
from imagenet_subsets.lists import subset_file_name
