"""The official JetClass checkpoints of the ParT repository: download, verify, record.

    python get_datasets.py models            # or: python -m partx.models_store fetch [NAME ...]

The ParT authors ship ParT and ParticleNet trained on the 100M-jet JetClass (``kin``, ``kinpid``,
``full``) in ``models/`` of https://github.com/jet-universe/particle_transformer; its scripts load them
with weaver's ``--load-model-weights models/ParT_<features>.pt`` for fine-tuning. They are fetched here
from raw.githubusercontent.com at a pinned commit into ``models/official/`` (git-ignored; nothing is
committed) beside their cards (``models/official/<name>.yaml``, committed).

Verification. The repository publishes no checksums; two checks stand in:

* the **git blob id** of each file in that commit's tree (``sha1("blob <size>\\0" + bytes)``, read from
  the repository at ``COMMIT``): it pins the exact bytes and is checked on every download;
* **sha256 recorded on first download** in ``models/official.lock`` (trust on first use), checked on
  every later fetch and by ``partx.models_store.load``; commit the lock to share it.

A size check (exact for the ParticleNet files, whose sizes the tree lists; a plausible range for ParT,
whose ~2.1M float32 parameters make ~8.6 MB) catches an HTML error page before anything is hashed.
Downloads resume and land under their final name only when verified (partx.download.transport).

The weights load unchanged into partx: the official network file wraps weaver's ParticleTransformer /
ParticleNet as ``self.mod``, as partx's network files do, so the parameter names agree; ParT's official
configuration differs from partx's defaults only in ``use_pre_activation_pair=False`` (parameter-free:
it changes outputs, not shapes), which the cards set. tests/test_models_store.py loads a randomly
initialised weaver model of the official configuration through this path and compares outputs.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

from partx.atomic import atomic_write
from partx.download.errors import ChecksumError, DownloadError, NetworkUnreachableError
from partx.download.transport import download_file

REPOSITORY = "https://github.com/jet-universe/particle_transformer"
#: the commit whose models/ tree the blob ids below were read from (2925bdb, "Update dataset conversion scripts.")
COMMIT = "2925bdb249e8ef78560cc2b9b651eda3615da8c7"
RAW_URL = f"https://raw.githubusercontent.com/jet-universe/particle_transformer/{COMMIT}/models/{{file}}"
LOCK = "official.lock"


@dataclass(frozen=True)
class OfficialFile:
    name: str                 # card name in models/official/ (the file stem)
    git_blob: str             # the file's blob id in COMMIT's tree
    size: int | None          # exact size where the tree gives it
    min_size: int = 100_000
    max_size: int = 50_000_000

    @property
    def file(self) -> str:
        return f"{self.name}.pt"

    def url(self, base: str | None = None) -> str:
        return f"{base.rstrip('/')}/{self.file}" if base else RAW_URL.format(file=self.file)


OFFICIAL = {f.name: f for f in (
    OfficialFile("ParT_kin", "70a82e78a7dc54601d4b19c089969fd917e397b9", None, 5_000_000, 15_000_000),
    OfficialFile("ParT_kinpid", "f4bf560aed152f0b2acd37f60be1323ea84039f8", None, 5_000_000, 15_000_000),
    OfficialFile("ParT_full", "cf510276bb5616caf87adace4e05eafab4b6c762", None, 5_000_000, 15_000_000),
    OfficialFile("ParticleNet_kin", "e3577bd272824e2470e8a12c9b7fe314546da76f", 1514546),
    OfficialFile("ParticleNet_kinpid", "83075a3aed3e5d7e29fe1a53b3d9f90fec13e40c", 1519154),
    OfficialFile("ParticleNet_full", "eab18fffeef62001aa08758ff954873b414ce3e4", 1522482),
)}


def git_blob_id(path: str | os.PathLike) -> str:
    """git's object id of a file's content: sha1 over ``b"blob <size>\\0"`` and the bytes."""
    path = Path(path)
    h = hashlib.sha1(f"blob {path.stat().st_size}\0".encode())
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def read_lock(path: str | os.PathLike) -> dict:
    path = Path(path)
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise DownloadError(f"{path} is not valid JSON: delete it to record the checksums again") from None
    return data if isinstance(data, dict) else {}


def _sha256(path: Path) -> str:
    from partx.models_store.card import sha256sum

    return sha256sum(path)


def verifier(spec: OfficialFile, recorded_sha256: str | None, check_blob: bool = True):
    """The check a download must pass before it is renamed into place (DownloadError subclasses)."""

    def verify(path: Path) -> None:
        size = path.stat().st_size
        if spec.size is not None and size != spec.size:
            raise ChecksumError(f"{spec.file}: {size} bytes, expected {spec.size} (not the official file)")
        if not spec.min_size <= size <= spec.max_size:
            raise ChecksumError(f"{spec.file}: {size} bytes, outside the plausible {spec.min_size}-{spec.max_size} "
                                f"(an error page or a truncated file?)")
        if check_blob and git_blob_id(path) != spec.git_blob:
            raise ChecksumError(f"{spec.file}: git blob id {git_blob_id(path)} differs from {spec.git_blob} "
                                f"(the file in {REPOSITORY} at {COMMIT[:7]})")
        if recorded_sha256 and _sha256(path) != recorded_sha256:
            raise ChecksumError(f"{spec.file}: sha256 {_sha256(path)} differs from {recorded_sha256} recorded in {LOCK}")

    return verify


def fetch(names: list[str] | None, models: Path, *, base_url: str | None = None, check_blob: bool = True,
          force: bool = False, retries: int = 3, progress: bool = True, connect_timeout: float = 15.0,
          log=print) -> list[Path]:
    """Download (or re-verify) the official checkpoints into ``models/official/``; record sha256 in the lock.

    ``base_url`` replaces the raw GitHub URL (a mirror; tests use a local server); ``check_blob=False`` only
    for such test files, which are not the official bytes. Raises DownloadError (one line) on failure.
    """
    unknown = [n for n in names or [] if n not in OFFICIAL]
    if unknown:
        from partx.download.errors import UsageError

        raise UsageError(f"unknown official checkpoint(s) {', '.join(unknown)}; choose from {', '.join(OFFICIAL)}")
    lock_path = models / LOCK
    lock = read_lock(lock_path)
    out = []
    for name in names or list(OFFICIAL):
        spec = OFFICIAL[name]
        dest = models / "official" / spec.file
        recorded = (lock.get(name) or {}).get("sha256")
        try:
            download_file(spec.url(base_url), dest, force=force, retries=retries, progress=progress,
                          connect_timeout=connect_timeout, log=log, verify=verifier(spec, recorded, check_blob))
        except NetworkUnreachableError as err:
            raise NetworkUnreachableError(f"{err} The official weights are at {spec.url(base_url)}; without network, "
                                          f"copy them into {dest.parent}/ and re-run to verify them.") from None
        if not recorded:
            lock[name] = dict(file=f"official/{spec.file}", url=spec.url(base_url), git_blob=spec.git_blob,
                              sha256=_sha256(dest), bytes=dest.stat().st_size,
                              recorded=_dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"))
            atomic_write(lock_path, json.dumps(lock, indent=1, sort_keys=True) + "\n")
            log(f"  {spec.file}: sha256 {lock[name]['sha256']} recorded in {lock_path}")
        out.append(dest)
    return out


#: published JetClass test accuracy / AUC (ParT paper, arXiv:2202.03772, Table 2: full features)
PAPER_METRICS = {"ParT_full": (0.861, 0.9877), "ParticleNet_full": (0.844, 0.9849)}
#: ParT's official network file sets these where partx's defaults differ (parameter-free: outputs, not shapes)
PART_OPTIONS = {"use_pre_activation_pair": False,
                "cls_block_params": {"dropout": 0, "attn_dropout": 0, "activation_dropout": 0}}


def card_data(name: str) -> dict:
    """The committed card models/official/<name>.yaml (``python -m partx.models_store official-cards``)."""
    spec = OFFICIAL[name]
    net, feats = name.split("_")
    part = net == "ParT"
    data = dict(
        name=name, official=True,
        about=f"{'Particle Transformer' if part else 'ParticleNet'} trained by the ParT authors on JetClass "
              f"(100M jets), {feats!r} features",
        model="ParT" if part else "PN",
        network="example_ParticleTransformer.py" if part else "example_ParticleNet.py",
        options=dict(PART_OPTIONS) if part else {},
        data_config=f"data/JetClass/JetClass_{feats}.yaml", features=feats,
        weights=dict(file=spec.file, url=spec.url(), git_blob=spec.git_blob, sha256=None,
                     sha256_note=f"no published checksum: recorded on first download in models/{LOCK}; the git "
                                 f"blob id is checked on every download"),
        source=dict(repository=REPOSITORY, commit=COMMIT, path=f"models/{spec.file}",
                    used_there_by=f"weaver --load-model-weights models/{spec.file} (fine-tuning scripts)"),
        data=dict(source="JetClass (Pythia), 100M training jets", homepage="https://zenodo.org/record/6619768"),
        training=dict(command=f"./train_JetClass.sh {'ParT' if part else 'PN'} {feats} (official repository)",
                      note="trained by the authors on GPUs (arXiv:2202.03772); not re-measured here"),
    )
    if name in PAPER_METRICS:
        acc, auc = PAPER_METRICS[name]
        data["metrics"] = dict(test_set="JetClass test set (20M jets), as published", accuracy=acc, auc=auc,
                               source="ParT paper, arXiv:2202.03772, Table 2")
    return data
