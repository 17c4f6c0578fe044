"""Where each dataset's files are, declared once for the weaver launcher (partx/launcher.py).

A ``train_<Name>.sh`` script is the launcher plus one of these layouts. A layout says where the data
directory comes from, how the splits and per-class groups are laid out, which data configs exist, and
the run sizes of the official ParT scripts. Everything else (knobs, preflight, the weaver command)
is shared.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass


@dataclass(frozen=True)
class DatasetLayout:
    """Files ``{datadir}/{sample}/{split}/{group}_*.{ext}``, one weaver ``group:glob`` per group.

    ``groups`` empty: each split is one unnamed glob ``{split}/*.{ext}``. ``val`` None: no validation
    files (weaver splits the training files itself, ``--train-val-split``). ``flat``: the splits are
    file-name globs in the data directory itself, ``{datadir}/{split}.{ext}`` (QuarkGluon's
    ``train_file_*.parquet``, as the official scripts read them).
    """

    name: str                          # JetClass: directory names, log/checkpoint tags
    family: str                        # partx.registry dataset family
    datadir_var: str                   # environment variable (env.sh) holding the data directory
    default_datadir: str
    train: str
    test: str
    val: str | None
    data_config: str                   # with {features}
    features: tuple[str, ...]
    default_features: str
    generate_hint: str                 # how to make a small local copy
    features_name: str = "feature set"  # what the FEATURES argument selects (TrackML: the event/sector set)
    aliases: tuple[tuple[str, str], ...] = ()  # other names of a FEATURES value (TrackML: 60k = full)
    sample: str = ""                   # sub-directory above the splits (JetClass: generator name; may use {features})
    sample_in_run_name: bool = True    # whether a fixed ``sample`` is part of run names (Pileup: no, "processed" says nothing)
    groups: tuple[str, ...] = ()
    ext: str = "root"
    epochs: int = 50
    samples_per_epoch: int = 10000 * 1024   # divided by the number of DDP processes
    samples_per_epoch_val: int = 10000 * 128
    optimizer: str = "ranger"
    dataopts: str = "--num-workers 2 --fetch-step 0.01"   # weaver loading options (DATAOPTS default)
    predict_output: str = "pred.root"   # weaver --predict-output (its extension picks ROOT or parquet)
    find_data: str = ""   # "module:function(datadir, features, default, dry_run) -> datadir" when data may be made on demand
    flat: bool = False
    weight_decay: bool = False   # give models their registry weight_decay (official QG/TL scripts: ParT 0.01)
    pretrained: tuple[tuple[str, str], ...] = ()   # FEATURES -> JetClass feature set of the checkpoint -FineTune starts from

    @property
    def sample_tag(self) -> str:
        """The sample's part of run names (none when the sample directory is just the feature set)."""
        return "" if "{" in self.sample or not self.sample_in_run_name else self.sample

    def for_features(self, features: str) -> DatasetLayout:
        """This layout with ``{features}`` in the sample directory filled in."""
        return dataclasses.replace(self, sample=self.sample.format(features=features))

    @property
    def script(self) -> str:
        return f"train_{self.name}.sh"

    def split_dir(self, datadir: str, split: str) -> str:
        return "/".join(p for p in (datadir.rstrip("/"), self.sample, split) if p)

    def split_glob(self, datadir: str, split: str) -> str:
        if self.flat:
            return "/".join(p for p in (datadir.rstrip("/"), self.sample, f"{split}.{self.ext}") if p)
        return f"{self.split_dir(datadir, split)}/*.{self.ext}"

    def group_glob(self, datadir: str, split: str, group: str) -> str:
        return f"{self.split_dir(datadir, split)}/{group}_*.{self.ext}"


#: JetClass (Qu et al. 2022), as the official ParT train_JetClass.sh lays it out.
JETCLASS = DatasetLayout(
    name="JetClass", family="jetclass", datadir_var="DATADIR_JetClass", default_datadir="./datasets/JetClass",
    sample="Pythia", train="train_100M", val="val_5M", test="test_20M",
    # the official script's group order (weaver's --data-train/--data-test name:glob list)
    groups=("HToBB", "HToCC", "HToGG", "HToWW2Q1L", "HToWW4Q", "TTBar", "TTBarLep", "WToQQ", "ZToQQ", "ZJetsToNuNu"),
    data_config="data/JetClass/JetClass_{features}.yaml", features=("kin", "kinpid", "full"), default_features="full",
    generate_hint="python -m partx.datagen jetclass --out ./datasets/JetClass --preset small",
)

#: TrackML (HEPT's preprocessing, partx.readers.trackml): FEATURES selects the set, whole events ("full",
#: HEPT's Tracking-60k) or phi-sector sets; one event (or sector) per row. Sizes follow HEPT's tracking
#: config (Adam, lr 1e-3) with batches of several events instead of HEPT's batch size 1; the epoch is
#: counted in rows (weaver cycles the files) so that sets of different sizes train for comparable steps.
TRACKML = DatasetLayout(
    name="TrackML", family="trackml", datadir_var="DATADIR_TrackML", default_datadir="./datasets/TrackML",
    sample="processed/{features}", train="train", val="val", test="test",
    data_config="data/TrackML/TrackML_{features}.yaml", features=("full", "20k", "15k", "10k", "6k", "3k"),
    default_features="full", features_name="TrackML set", aliases=(("60k", "full"),),
    generate_hint="python -m partx.datagen trackml --out $DATADIR_TrackML/raw_events --events 20 (preprocessed on first use)",
    epochs=100, samples_per_epoch=800, samples_per_epoch_val=100, optimizer="adam",
    # one row per file: read whole files (4 events per fetch), not fractions of each file
    dataopts="--num-workers 1 --fetch-by-files --fetch-step 4",
    predict_output="pred.parquet",  # per-hit embeddings, (n_hits, E) per event: jagged, parquet keeps them whole
    find_data="partx.readers.trackml.datasets:launcher_data_dir",
)

#: Pileup (HEPT's pileup task, docs/pileup_models.md): processed events from partx.readers.pileup (the
#: contract of the pileup reader: several events per file, one row per event, HEPT's per-particle arrays).
#: Two data configs over the same files: "processed" (HEPT's inputs) and "vtx" (HEPT's inputs + the charged
#: particles' vertex association, the information CHS and PUPPI use; docs/pileup_models.md). HEPT's pileup
#: config trains with Adam at lr 1e-3. The epoch is counted in events. Predictions are per-particle
#: probabilities (jagged): parquet.
PILEUP = DatasetLayout(
    name="Pileup", family="pileup", datadir_var="DATADIR_Pileup", default_datadir="./datasets/Pileup",
    sample="processed", sample_in_run_name=False, train="train", val="val", test="test",  # {DATADIR_Pileup}/processed/{split}
    data_config="data/Pileup/Pileup_{features}.yaml", features=("processed", "vtx"), default_features="processed",
    features_name="Pileup set",
    generate_hint="python -m partx.datagen pileup --out $DATADIR_Pileup/raw --events 20 (preprocessed on first use)",
    epochs=100, samples_per_epoch=800, samples_per_epoch_val=100, optimizer="adam",
    dataopts="--num-workers 1 --fetch-by-files --fetch-step 1",
    predict_output="pred.parquet",
    find_data="partx.readers.pileup.datasets:launcher_data_dir",
)

#: Quark-gluon (Komiske, Metodiev, Thaler; EnergyFlow's Pythia set) converted to parquet
#: (partx.readers.quarkgluon), as the official train_QuarkGluon.sh: no validation files (weaver keeps
#: 1/9 of the training jets), 20 epochs of 1.6M jets, the whole set in memory. ``kinpidplus`` starts
#: from the ``kinpid`` JetClass checkpoint.
QUARKGLUON = DatasetLayout(
    name="QuarkGluon", family="quarkgluon", datadir_var="DATADIR_QuarkGluon", default_datadir="./datasets/QuarkGluon",
    flat=True, train="train_file_*", val=None, test="test_file_*", ext="parquet",
    data_config="data/QuarkGluon/qg_{features}.yaml", features=("kin", "kinpid", "kinpidplus"), default_features="kinpid",
    generate_hint="python -m partx.datagen quarkgluon --out ./datasets/QuarkGluon (made on first use when "
                  "$DATADIR_QuarkGluon is the default and empty)",
    epochs=20, samples_per_epoch=1_600_000, samples_per_epoch_val=200_000,
    dataopts="--num-workers 1 --fetch-step 1 --in-memory --train-val-split 0.8889",
    find_data="partx.readers.jet_benchmarks:quarkgluon_data_dir", weight_decay=True,
    pretrained=(("kin", "kin"), ("kinpid", "kinpid"), ("kinpidplus", "kinpid")),
)

#: Top tagging landscape (Kasieczka et al.) converted to parquet (partx.readers.toplandscape), as the
#: official train_TopLandscape.sh: one train / val / test file, 20 epochs of 2400 x 512 jets.
TOPLANDSCAPE = DatasetLayout(
    name="TopLandscape", family="topland", datadir_var="DATADIR_TopLandscape", default_datadir="./datasets/TopLandscape",
    flat=True, train="train_file", val="val_file", test="test_file", ext="parquet",
    data_config="data/TopLandscape/top_{features}.yaml", features=("kin",), default_features="kin",
    generate_hint="python -m partx.datagen toplandscape --out ./datasets/TopLandscape (made on first use when "
                  "$DATADIR_TopLandscape is the default and empty)",
    epochs=20, samples_per_epoch=2400 * 512, samples_per_epoch_val=800 * 512,
    dataopts="--num-workers 1 --fetch-step 1 --in-memory",
    find_data="partx.readers.jet_benchmarks:toplandscape_data_dir", weight_decay=True, pretrained=(("kin", "kin"),),
)

LAYOUTS = {layout.family: layout for layout in (JETCLASS, TRACKML, PILEUP, QUARKGLUON, TOPLANDSCAPE)}
