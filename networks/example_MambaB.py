"""weaver network file for TrackML: Mamba-b: Mamba blocks over OR & AND E2LSH hit orders (-o ordering lampa: Lampa's single-projection order).

Sizes S / M / L (``-o size M``), InfoNCE variant (``-o loss_variant hept_radius|lampa_knn``), DBSCAN radius
for track building at test time (``-o dbscan_eps 0.1``), or any TrackingConfig field (``-o block_size 120``).
Inputs: data/TrackML/*.yaml (hit_points, hit_features, hit_truth, hit_mask). See docs/tracking_models.md.
"""

from partx.train.tracking import tracking_network

get_model, get_loss, get_train_fn, get_evaluate_fn = tracking_network("mamba_b")
