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
from .continuous_knn import UPDATES, continuous_knn, log1mexp
from .patches import Patches, window_candidates

__all__ += ["Patches", "UPDATES", "continuous_knn", "log1mexp", "window_candidates"]
