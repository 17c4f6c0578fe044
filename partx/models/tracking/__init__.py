"""Point-cloud encoders for TrackML tracking: HEPT, Mamba, Mamba-a, Mamba-b (docs/tracking_models.md)."""

from partx.models.tracking.configs import SIZES, build_tracking_model, tracking_config
from partx.models.tracking.encoder import MODELS, TrackingConfig, TrackingEncoder, count_parameters
from partx.models.tracking.hept_checkpoint import hept_from_state_dict, load_hept_state_dict

__all__ = [
    "MODELS", "SIZES", "TrackingConfig", "TrackingEncoder", "build_tracking_model", "count_parameters",
    "hept_from_state_dict", "load_hept_state_dict", "tracking_config",
]
