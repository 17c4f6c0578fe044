"""A model card: one YAML file per checkpoint in ``models/``, machine-readable, read by every loader.

``models/<name>.yaml`` beside ``models/<name>.pt`` (official weights: ``models/official/<name>.yaml``,
their ``.pt`` downloaded beside it). Required fields (``REQUIRED``) say how to rebuild the network
exactly as weaver trained it: ``network`` (a file in networks/), ``options`` (its ``-o`` overrides, the
registry's defaults included), ``data_config``, and ``weights`` (file name, sha256, bytes). The rest
documents the checkpoint: data, command, epochs, hardware, training time, metrics, partx commit.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from partx.atomic import atomic_write
from partx.cli import UserError

#: fields every card must have (dotted: nested)
REQUIRED = ("name", "network", "options", "data_config", "weights.file")


class CardError(UserError):
    """A card that is missing, unreadable, incomplete, or does not match its weights (one line, exit 2)."""


def sha256sum(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def _get(data: dict, dotted: str) -> Any:
    for key in dotted.split("."):
        if not isinstance(data, dict) or key not in data:
            return None
        data = data[key]
    return data


@dataclass
class ModelCard:
    """A parsed card; ``path`` is the YAML file, ``data`` its content."""

    path: Path
    data: dict

    @property
    def name(self) -> str:
        return str(self.data["name"])

    @property
    def network(self) -> str:
        return str(self.data["network"])

    @property
    def options(self) -> dict:
        return dict(self.data.get("options") or {})

    @property
    def data_config(self) -> str:
        return str(self.data["data_config"])

    @property
    def weights_path(self) -> Path:
        return self.path.parent / str(self.data["weights"]["file"])

    @property
    def sha256(self) -> str | None:
        return (self.data.get("weights") or {}).get("sha256")

    @property
    def official(self) -> bool:
        return bool(self.data.get("official"))

    def get(self, dotted: str, default: Any = None) -> Any:
        value = _get(self.data, dotted)
        return default if value is None else value


def read_card(path: str | os.PathLike) -> ModelCard:
    """Parse and check a card; CardError names the file and the problem."""
    path = Path(path)
    if not path.is_file():
        raise CardError(f"model card {path} does not exist")
    try:
        data = yaml.safe_load(path.read_text())
    except (yaml.YAMLError, UnicodeDecodeError) as err:
        raise CardError(f"model card {path} is not valid YAML: {' '.join(str(err).split())[:160]}") from None
    if not isinstance(data, dict):
        raise CardError(f"model card {path} must be a YAML mapping, not {type(data).__name__}")
    missing = [f for f in REQUIRED if _get(data, f) is None]
    if missing:
        raise CardError(f"model card {path} lacks {', '.join(missing)}")
    if not isinstance(data["options"], dict):
        raise CardError(f"model card {path}: options must be a mapping (the -o key/value pairs)")
    return ModelCard(path, data)


def write_card(path: str | os.PathLike, data: dict, made_by: str = "`make models`") -> Path:
    """Write a card atomically (keys in the order given)."""
    text = f"# partx model card (docs/models.md), written by {made_by}.\n"
    text += yaml.safe_dump(data, sort_keys=False, default_flow_style=False, width=110)
    return atomic_write(path, text)
