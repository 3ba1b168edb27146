"""Functional kernels: similarity, stable top-k, blocked and continuous k-NN, gathering, sliding windows, patches, coordinates,
criss-cross index sets and separable entry kernels."""

from .candidates import candidate_sq_distances, candidate_sum
from .continuous_knn import UPDATES, continuous_knn, log1mexp
from .criss_cross import criss_cross_index
from .gather import gather
from .knn import auto_block_size, knn
from .neighborhood_window import neighborhood_window_index
from .patches import Patches, window_candidates
from .positions import grid_coordinates, padded_to_image_index
from .similarity import DISTANCES, METRICS, SIMILARITIES, PairScorer, larger_is_nearer, similarity
from .symmetric import SYMMETRIC_KERNELS, symmetric_normalize
from .topk import top_k_stable
from .taylor import ENTRY_KERNELS, entry_features, entry_kernel
from .windows import PADDING_MODES, output_size, window_index

__all__ = [
    "DISTANCES", "ENTRY_KERNELS", "PairScorer", "METRICS", "PADDING_MODES", "Patches", "SIMILARITIES", "SYMMETRIC_KERNELS", "UPDATES",
    "auto_block_size", "candidate_sq_distances", "candidate_sum", "continuous_knn", "criss_cross_index",
    "entry_features", "entry_kernel", "gather", "grid_coordinates", "knn",
    "larger_is_nearer", "log1mexp", "neighborhood_window_index", "output_size", "padded_to_image_index", "similarity", "symmetric_normalize", "top_k_stable",
    "window_candidates", "window_index",
]
