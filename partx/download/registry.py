"""Dataset registry: name -> files (URL, md5, subset, where to unpack), homepage and notes.

URLs, md5 sums and the directory layout of JetClass / QuarkGluon / TopLandscape follow the
official Particle Transformer repository (jet-universe/particle_transformer, get_datasets.py);
the TrackML / Pileup archives are HEPT's (Graph-COM/HEPT) pre-processed Zenodo files. File sizes
are not recorded: none could be confirmed here (see docs/datasets.md).
"""

from __future__ import annotations

import os
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping, Sequence

from partx.download.errors import UnknownDatasetError, UsageError

#: Environment variable that overrides the base URL of every dataset file
#: (same effect as ``get_datasets.py --mirror URL``).
MIRROR_ENV = "PARTX_DATASET_MIRROR"


@dataclass(frozen=True)
class RemoteFile:
    """One downloadable archive of a dataset.

    ``extract_to`` is relative to the dataset directory ``DATA_DIR/<name>`` and may be ``..`` for
    archives that carry their own top-level directory. ``md5=None``: no checksum is known; the
    file is downloaded unverified, with a warning.
    """

    name: str
    url: str
    md5: str | None = None
    subset: str = "all"
    extract_to: str = "."
    default: bool = True
    archive: bool = True   # False: a data file (e.g. .npz, itself a zip) moved into extract_to as it is

    def url_for(self, mirror: str | None, dataset: str = "") -> str:
        """The official URL, or ``<mirror>/<file name>`` (``{dataset}`` in ``mirror`` substituted)."""
        if not mirror:
            return self.url
        base = mirror.replace("{dataset}", dataset)
        return base.rstrip("/") + "/" + urllib.parse.quote(self.name)


@dataclass(frozen=True)
class DatasetSpec:
    """One dataset: its files and the text shown around a download.

    ``notes`` is printed before downloading; ``offline_hint`` is appended to a network error.
    Both may use ``{dsdir}``, ``{dsdir_rel}``, ``{urls}`` and ``{env}`` (see :meth:`render`).
    """

    name: str
    files: tuple[RemoteFile, ...]
    homepage: str = ""
    description: str = ""
    notes: str = ""
    offline_hint: str = ""

    @property
    def variable(self) -> str:
        """The env.sh variable holding the dataset directory."""
        return f"DATADIR_{self.name}"

    @property
    def subsets(self) -> list[str]:
        return list(dict.fromkeys(f.subset for f in self.files))

    def select(self, subsets: Sequence[str] | None = None) -> list[RemoteFile]:
        """Files of ``subsets`` (None: the default ones; 'all': every file)."""
        if not subsets:
            return [f for f in self.files if f.default]
        wanted = list(dict.fromkeys(subsets))
        if "all" in wanted:
            return list(self.files)
        unknown = [s for s in wanted if s not in self.subsets]
        if unknown:
            raise UsageError(
                f"unknown subset(s) {', '.join(map(repr, unknown))} for {self.name}; "
                f"choose from: {', '.join(self.subsets)} (or 'all')"
            )
        return [f for f in self.files if f.subset in wanted]

    def render(self, text: str, files: Iterable[RemoteFile], dsdir: Path) -> str:
        """Fill the placeholders of ``notes`` / ``offline_hint`` for this download."""
        rel = os.path.relpath(dsdir)
        rel = str(dsdir) if rel.startswith("..") else "./" + rel
        urls = ", ".join(f.url for f in files)
        return (text.replace("{dsdir_rel}", rel).replace("{dsdir}", str(dsdir))
                    .replace("{urls}", urls).replace("{env}", MIRROR_ENV))


_ZENODO_JETCLASS = "https://zenodo.org/record/6619768/files/"
_JETCLASS_TRAIN_MD5 = (
    "de4fd2dca2e68ab3c85d5cfd3bcc65c3",
    "9722a359c5ef697bea0fbf79bf50f003",
    "1e9f66cd1f915f9d10e90ae1d7761720",
    "47348fc8985319fa4806da87500482fa",
    "6b0ce16bd93b442a8d51914466990279",
    "416e347512e716de51d392bee327b8e9",
    "e9b9c1557b1b39bf0a16e4ab631ae451",
    "5bfc6cb285ccb7680cefa9ac82ad1a2e",
    "540c1a0d66dfad78d2b363c5740ccf86",
    "668f40b3275167ff7104c48317c0ae2a",
)


def _jetclass_files() -> tuple[RemoteFile, ...]:
    files = [
        RemoteFile(
            name=f"JetClass_Pythia_train_100M_part{i}.tar",
            url=f"{_ZENODO_JETCLASS}JetClass_Pythia_train_100M_part{i}.tar",
            md5=md5,
            subset="train",
            extract_to="Pythia/train_100M",
        )
        for i, md5 in enumerate(_JETCLASS_TRAIN_MD5)
    ]
    files.append(RemoteFile(
        name="JetClass_Pythia_val_5M.tar",
        url=f"{_ZENODO_JETCLASS}JetClass_Pythia_val_5M.tar",
        md5="7235ccb577ed85023ea3ab4d5e6160cf",
        subset="val",
        extract_to="Pythia",
    ))
    files.append(RemoteFile(
        name="JetClass_Pythia_test_20M.tar",
        url=f"{_ZENODO_JETCLASS}JetClass_Pythia_test_20M.tar",
        md5="64e5156d26d101adeb43b8388207d767",
        subset="test",
        extract_to="Pythia",
    ))
    return tuple(files)


_HEPT_ZENODO = "https://zenodo.org/records/10694703"

_COPY_BY_HAND = (
    "download the file(s) on a machine with internet access ({urls}), copy them "
    "into {dsdir}/ and re-run this command (files already present are checked "
    "against their md5 and not downloaded again), or point --mirror / ${env} at "
    "a server that has a copy."
)

#: The public originals (``--subsets original``), converted by partx.readers.quarkgluon / toplandscape after
#: the download: EnergyFlow's 20 Pythia quark-gluon files and the top tagging landscape's three HDF5
#: files. Their md5 sums are not recorded here (pin them with --checksum).
_QG_ORIGINALS = tuple(
    RemoteFile(name=n, url=f"https://zenodo.org/record/3164691/files/{n}", subset="original", extract_to="original",
               default=False, archive=False)
    for n in ["QG_jets.npz"] + [f"QG_jets_{i}.npz" for i in range(1, 20)]
)
_TL_ORIGINALS = tuple(
    RemoteFile(name=f"{s}.h5", url=f"https://zenodo.org/record/2603256/files/{s}.h5", subset="original",
               extract_to="original", default=False, archive=False)
    for s in ("train", "val", "test")
)

REGISTRY: dict[str, DatasetSpec] = {
    "JetClass": DatasetSpec(
        name="JetClass",
        homepage="https://zenodo.org/record/6619768",
        description="JetClass (Qu, Li, Qian 2022): 10 jet classes, 100M train / 5M val / "
                    "20M test jets, ROOT files (MadGraph + Pythia + Delphes).",
        files=_jetclass_files(),
        offline_hint=(
            "Without network access you can\n"
            "  * generate a small dataset in the same format locally:\n"
            "        python -m partx.datagen jetclass --out {dsdir_rel} --preset small\n"
            "  * or " + _COPY_BY_HAND
        ),
    ),
    "QuarkGluon": DatasetSpec(
        name="QuarkGluon",
        homepage="https://zenodo.org/record/3164691",
        description="Pythia8 quark/gluon jets (Komiske, Metodiev, Thaler), converted to "
                    "parquet by the ParT authors.",
        files=(RemoteFile(
            name="QuarkGluon.tar",
            url="https://hqu.web.cern.ch/datasets/QuarkGluon/QuarkGluon.tar",
            subset="converted",
            md5="d8dd7f71a7aaaf9f1d2ee3cddef998f9",
            extract_to="..",
        ), *_QG_ORIGINALS),
        offline_hint="Without network access you can " + _COPY_BY_HAND,
    ),
    "TopLandscape": DatasetSpec(
        name="TopLandscape",
        homepage="https://zenodo.org/record/2603256",
        description="Top quark tagging reference dataset (Kasieczka et al.), converted "
                    "to parquet by the ParT authors.",
        files=(RemoteFile(
            name="TopLandscape.tar",
            url="https://hqu.web.cern.ch/datasets/TopLandscape/TopLandscape.tar",
            subset="converted",
            md5="4fca2e47afbf321b0f201da6b804c404",
            extract_to="..",
        ), *_TL_ORIGINALS),
        offline_hint="Without network access you can " + _COPY_BY_HAND,
    ),
    "TrackML": DatasetSpec(
        name="TrackML",
        homepage="https://www.kaggle.com/c/trackml-particle-identification",
        description="TrackML particle tracking challenge; HEPT's pre-processed "
                    "point clouds (tracking-6k / tracking-60k).",
        files=(
            RemoteFile(
                name="tracking-6k-processed.zip",
                url=f"{_HEPT_ZENODO}/files/tracking-6k-processed.zip",
                md5=None,
                subset="tracking-6k",
                extract_to="processed",
            ),
            RemoteFile(
                name="tracking-60k-processed.zip",
                url=f"{_HEPT_ZENODO}/files/tracking-60k-processed.zip",
                md5=None,
                subset="tracking-60k",
                extract_to="processed",
                default=False,
            ),
        ),
        notes=(
            "TrackML sources:\n"
            "  * raw challenge data (accuracy phase): "
            "https://www.kaggle.com/c/trackml-particle-identification/data\n"
            "    needs a Kaggle account that accepted the competition rules, so it "
            "cannot be fetched anonymously. By hand:\n"
            "        kaggle competitions download -c trackml-particle-identification "
            "-p {dsdir}/raw\n"
            "    (train_sample.zip = first 100 events, train_1..5.zip = 8850 events, "
            "test.zip, detectors.zip); leave train_*.zip + detectors.zip in {dsdir}/raw/ (or unzip the "
            "event CSVs into {dsdir}/raw_events/): this command then unpacks, verifies and preprocesses "
            "them into {dsdir}/processed/<set>/ (--local-only: without downloading; --sets, --workers).\n"
            "  * throughput-phase copy on Zenodo: https://zenodo.org/records/4730157\n"
            "  * HEPT pre-processed point clouds (downloaded now): "
            f"{_HEPT_ZENODO} -> {{dsdir}}/processed/, converted to partx's ROOT layout in "
            "{dsdir}/hept/processed/{full,6k}/\n"
            "    tracking-6k by default, add '--subsets tracking-60k' for the large one "
            "(HEPT warns ~65 GB after extraction).\n"
            "  * md5 sums of the HEPT archives are not published in HEPT's code, so they are NOT "
            "verified by default; compare with the md5 listed on the Zenodo record page and "
            "pin it with --checksum FILE=MD5."
        ),
        offline_hint="Without network access you can " + _COPY_BY_HAND,
    ),
    "Pileup": DatasetSpec(
        name="Pileup",
        homepage="https://github.com/Graph-COM/HEPT",
        description="HEPT pileup-mitigation dataset (Delphes ttbar + pileup, PF "
                    "candidates labelled LV/PU), pre-processed for PyG.",
        files=(RemoteFile(
            name="pileup-10k-processed.zip",
            url=f"{_HEPT_ZENODO}/files/pileup-10k-processed.zip",
            md5=None,
            subset="pileup-10k",
            extract_to="processed",
        ),),
        notes=(
            "Pileup sources:\n"
            f"  * HEPT pre-processed dataset (downloaded now): {_HEPT_ZENODO} -> "
            "{dsdir}/processed/ (HEPT warns ~11 GB after extraction), converted to partx's ROOT "
            "layout in {dsdir}/processed/{train,val,test}/ (docs/pileup_data.md).\n"
            "  * the raw Delphes ROOT files HEPT starts from (testTTbar_part1.root, "
            "testTTbar_part2.root) have no public download URL we could confirm; if you "
            "have them, put them in {dsdir}/raw/ and run python -m partx.readers.pileup preprocess "
            "--raw {dsdir}/raw --out {dsdir}; or generate: python -m partx.datagen pileup.\n"
            "  * md5 sums of the HEPT archives are not published in HEPT's code, so they are NOT "
            "verified by default; compare with the md5 listed on the Zenodo record page and "
            "pin it with --checksum FILE=MD5."
        ),
        offline_hint="Without network access you can " + _COPY_BY_HAND,
    ),
}


def resolve_dataset(name: str, registry: Mapping[str, DatasetSpec] | None = None) -> DatasetSpec:
    """Look a dataset up by name (case-insensitive); :class:`UnknownDatasetError` names the choices."""
    registry = REGISTRY if registry is None else registry
    folded = {k.lower(): k for k in registry}
    if name.lower() in folded:
        return registry[folded[name.lower()]]
    raise UnknownDatasetError(f"unknown dataset {name!r}; choose one of: {', '.join(registry)}")
