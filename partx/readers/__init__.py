"""Readers that turn external datasets (TrackML CSV events, HEPT's processed files) into weaver-readable files.

* :mod:`partx.readers.trackml` -- HEPT-exact TrackML preprocessing (pixel hits, 15 features, phi sectors)
  into ROOT files, and the reader of HEPT's processed Zenodo zips.
* :mod:`partx.readers.quarkgluon`, :mod:`partx.readers.toplandscape` -- the public quark-gluon (npz) and
  top-tagging (HDF5) originals into the parquet files of data/QuarkGluon and data/TopLandscape
  (shared part: :mod:`partx.readers.jet_benchmarks`).
"""
