"""Functional kernels: similarity, blocked k-NN, gathering, sliding windows, coordinates."""

from .gather import gather
from .knn import knn
from .positions import grid_coordinates, padded_to_image_index
from .similarity import DISTANCES, METRICS, SIMILARITIES, larger_is_nearer, similarity
from .windows import PADDING_MODES, output_size, window_index

__all__ = [
    "DISTANCES", "METRICS", "PADDING_MODES", "SIMILARITIES", "gather", "grid_coordinates", "knn",
    "larger_is_nearer", "output_size", "padded_to_image_index", "similarity", "window_index",
]
from .criss_cross import criss_cross_index
from .taylor import ENTRY_KERNELS, entry_features, entry_kernel

__all__ += ["ENTRY_KERNELS", "criss_cross_index", "entry_features", "entry_kernel"]
