"""TrackML -> weaver: HEPT-exact preprocessing of TrackML CSV events and of HEPT's processed files.

* :mod:`.features` -- the 14 HEPT hit features + layer/10, coords (HEPT point_cloud_builder.py,
  exatrkx_cell_features.py, src/datasets/tracking.py).
* :mod:`.event` -- one event's per-hit table (pixel hits, truth, reconstructable before sectoring).
* :mod:`.sectors` -- HEPT's extended phi sectors; ``SETS`` (full, 20k, 15k, 10k, 6k, 3k).
* :mod:`.split` -- 80/10/10 split by event id.
* :mod:`.rootio` -- the ROOT layout (tree ``Events``, jagged ``hit_*`` branches).
* :mod:`.preprocess` -- raw CSV folder -> ``OUT/processed/{set}/{split}/``, resumable, parallel.
* :mod:`.hept_zip` -- HEPT's Zenodo ``tracking-{60k,6k}-processed.zip`` -> the same layout.
* :mod:`.default` -- the embedded default dataset (generated + preprocessed) for train_TrackML.sh.

CLI: ``python -m partx.readers.trackml {preprocess,convert-hept} ...``.
"""
