"""ImageNet subsets: the published 1%/10% file lists (verified by sha256, not shipped),
the ImageNet-100 class list, and a cached per-split index for filtering a prepared
imagenet2012 with dense example ids."""

from imagenet_subsets.imagenet100 import load_class_list
from imagenet_subsets.lists import load_file_names
from imagenet_subsets.lists import place_in_dir
from imagenet_subsets.lists import SubsetError
from imagenet_subsets.lists import subset_file_name
