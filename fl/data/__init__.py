"""Federated handwritten-digit data: one in-memory dataset type and its loaders.

Every loader returns a :class:`FederatedDataset` (digits grouped by writer, uint8 pixels with
255 = white background, 0 = ink). :func:`load_dataset` picks the loader from a spec string:

* ``"synthetic"`` or ``"synthetic:N_WRITERS[:SEED]"`` - the built-in generator
  (:func:`synthetic_digits`), the default data of the demo and the tests;
* a ``.npz`` file - :func:`load_npz` (the format of ``fed_emnist_digits.npz``);
* TFF's ``fed_emnist_digitsonly_{train,test}.h5`` (their directory) - :func:`load_tff_h5`;
* a LEAF FEMNIST directory of JSON shards - :func:`load_leaf_json`.

:func:`download_tff_emnist` fetches TFF's public archive for :func:`load_tff_h5`.
"""
from .dataset import IMAGE_SHAPE, NUM_CLASSES, FederatedDataset, to_model_input
from .download import TFF_DIGITS_SHA256, TFF_DIGITS_URL, download_tff_emnist
from .errors import DataDownloadError, DataError, DataFormatError
from .info import describe
from .leaf_json import load_leaf_json
from .load import load_dataset
from .npz import load_npz, save_npz
from .synthetic import synthetic_digits
from .tff_h5 import load_tff_h5

__all__ = [
    "FederatedDataset",
    "to_model_input",
    "load_dataset",
    "load_npz",
    "save_npz",
    "load_tff_h5",
    "load_leaf_json",
    "download_tff_emnist",
    "synthetic_digits",
    "describe",
    "DataError",
    "DataFormatError",
    "DataDownloadError",
    "IMAGE_SHAPE",
    "NUM_CLASSES",
    "TFF_DIGITS_URL",
    "TFF_DIGITS_SHA256",
]
