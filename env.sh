#!/bin/bash
# Dataset locations, sourced by the train_*.sh scripts.
# ./get_datasets.py rewrites the matching line after a successful download.

export DATADIR_JetClass=./datasets/JetClass
export DATADIR_QuarkGluon=./datasets/QuarkGluon
export DATADIR_TopLandscape=./datasets/TopLandscape
export DATADIR_TrackML=./datasets/TrackML
export DATADIR_Pileup=./datasets/Pileup
