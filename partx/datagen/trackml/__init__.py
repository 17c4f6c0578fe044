"""TrackML-format toy detector: geometry, particle propagation, cells, truth weights, CSV reader/writer.

``python -m partx.datagen trackml --out DIR --events N`` writes events in the exact format of the
TrackML challenge (``event%09d-{hits,cells,particles,truth}.csv`` + ``detectors.csv``); ``io.read_event``
reads ours and the real ones alike. See docs/trackml_datagen.md.
"""
