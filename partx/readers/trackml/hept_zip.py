"""Read HEPT's processed tracking files (Zenodo record 10694703) and write them in partx's ROOT layout.

HEPT's ``src/datasets/tracking.py`` (``Tracking.process``) stores a whole dataset as one file,
``tracking-60k/data-60k.pt`` or ``tracking-6k/data-6k.pt``, inside ``tracking-{60k,6k}-processed.zip``:
``torch.save((data, slices, idx_split))`` where ``data`` is a PyG ``Data`` of every graph concatenated
(``InMemoryDataset.collate``) and ``slices[name]`` the graph boundaries of each attribute. The per-graph
attributes it stores: ``x`` (N, 14) scaled features (no layer/10 yet: ``TrackingTransform`` adds it at
load time), ``layer``, ``particle_id``, ``pt``, ``reconstructable``, ``sector``, ``eta``, ``n_hits``,
``n_layers_hit``, ``pos`` (eta, phi), ``evtid``, ``s`` (sector), and graph edges partx does not need.

Unpickling ``Data`` normally needs torch_geometric. ``load_hept_processed`` first tries without it: a
pickle shim maps every ``torch_geometric.*`` class to a plain placeholder that keeps the pickled state,
then the tensors are found in ``Data._store._mapping`` (PyG 2.x layout). If that fails it imports
torch_geometric (optional: ``pip install torch_geometric``), and without it raises a one-line error.
The file is memory-mapped (``torch.load(mmap=True)``), so the ~65 GB 60k file is read graph by graph.
"""

from __future__ import annotations

import os
import pickle
import shutil
import zipfile
from pathlib import Path
from types import ModuleType

import numpy as np

from partx.cli import UserError
from partx.readers.trackml.rootio import write_rows
from partx.readers.trackml.split import hept_graph_split

#: per-graph attributes read from HEPT's files
NODE_KEYS = ("x", "layer", "particle_id", "pt", "reconstructable", "sector", "eta", "n_hits", "n_layers_hit", "pos")
GRAPH_KEYS = ("evtid", "s")


class HEPTFileError(UserError):
    """A HEPT processed file that is missing, unreadable or lacks an expected attribute."""


class _Placeholder:
    """Stands in for any torch_geometric class while unpickling; keeps the state it is given."""

    def __init__(self, *args, **kwargs):
        self._args = args

    def __setstate__(self, state):
        self.__dict__["_state"] = state


def _placeholder_class(module: str, name: str) -> type:
    return type(name, (_Placeholder,), {"__module__": "partx.shim." + module})


class _ShimUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        if module.split(".")[0] == "torch_geometric":
            return _placeholder_class(module, name)
        return super().find_class(module, name)


_shim = ModuleType("partx_pyg_shim")
_shim.Unpickler = _ShimUnpickler
_shim.load = pickle.load
_shim.__dict__.update({k: getattr(pickle, k) for k in ("UnpicklingError", "HIGHEST_PROTOCOL")})


def _find_mapping(obj, depth: int = 0, marker: tuple[str, ...] = ("x", "particle_id")) -> dict | None:
    """The attribute dict (name -> tensor) of an unpickled ``Data`` placeholder: the first dict holding
    every ``marker`` attribute."""
    if depth > 6:
        return None
    if isinstance(obj, dict):
        if all(k in obj for k in marker):
            return obj
        for v in obj.values():
            found = _find_mapping(v, depth + 1, marker)
            if found is not None:
                return found
    if isinstance(obj, _Placeholder):
        return _find_mapping(obj.__dict__.get("_state"), depth + 1, marker) or _find_mapping(
            {k: v for k, v in obj.__dict__.items() if k != "_state"}, depth + 1, marker)
    if isinstance(obj, (tuple, list)):
        for v in obj:
            found = _find_mapping(v, depth + 1, marker)
            if found is not None:
                return found
    return None


def load_hept_processed(path: str | os.PathLike, keys: tuple[str, ...] = NODE_KEYS + GRAPH_KEYS,
                        marker: tuple[str, ...] = ("x", "particle_id"), with_split: bool = False):
    """(attributes, slices, how) of a HEPT ``data-*.pt``: attribute tensors of all graphs concatenated,
    graph boundaries per attribute, and "shim" or "torch_geometric" (which unpickler read it).

    ``keys``: attributes that must be present (default: the tracking ones); ``marker``: attributes that
    identify the ``Data`` dict; ``with_split``: also return HEPT's stored ``idx_split`` (4th item)."""
    import torch

    path = Path(path)
    if not path.is_file():
        raise HEPTFileError(f"HEPT processed file {path} does not exist")
    if not zipfile.is_zipfile(path):  # torch.save's format since torch 1.6 (HEPT used torch 2.3) is a zip
        raise HEPTFileError(f"{path} is not a torch.save file (truncated or not HEPT's data-*.pt?)")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=False, mmap=True, pickle_module=_shim)
        how = "shim"
    except Exception as shim_err:  # noqa: BLE001 - any failure: fall back to the real classes
        try:
            import torch_geometric  # noqa: F401
        except ImportError:
            raise HEPTFileError(f"cannot read {path} without torch_geometric ({type(shim_err).__name__}: "
                                f"{shim_err}); install the optional extra: pip install torch_geometric") from None
        try:
            obj = torch.load(path, map_location="cpu", weights_only=False, mmap=True)
        except Exception as err:  # noqa: BLE001
            raise HEPTFileError(f"{path} is not a readable HEPT processed file: {type(err).__name__}: {err}") from None
        how = "torch_geometric"
    if not (isinstance(obj, tuple) and len(obj) >= 2):
        raise HEPTFileError(f"{path}: expected (data, slices, idx_split) as HEPT's Tracking.process saves it")
    data, slices = obj[0], obj[1]
    mapping = _find_mapping(data, marker=marker) if how == "shim" else dict(data._store._mapping if hasattr(data, "_store") else data)
    if mapping is None:
        raise HEPTFileError(f"{path}: no graph attributes ({', '.join(marker)}) found in the stored Data object")
    missing = [k for k in keys if k not in mapping or k not in slices]
    if missing:
        raise HEPTFileError(f"{path}: missing attribute(s) {', '.join(missing)}")
    if with_split:
        return mapping, dict(slices), how, (obj[2] if len(obj) > 2 else None)
    return mapping, dict(slices), how


def graph_row(mapping: dict, slices: dict, i: int, n_sectors: int) -> dict[str, np.ndarray]:
    """Graph ``i`` of a HEPT file as one partx row (``rootio`` branches); reads only that graph's slices."""
    g = {k: mapping[k][int(slices[k][i]):int(slices[k][i + 1])].numpy() for k in NODE_KEYS + GRAPH_KEYS}
    x = g["x"].astype(np.float32)
    row = {"event_id": int(g["evtid"][0]), "sector_id": int(g["s"][0]), "n_sectors": n_sectors}
    for j, name in enumerate(("r", "phi", "z", "eta_rz", "u", "v", "charge_frac", "leta", "lphi",
                              "lx", "ly", "lz", "geta", "gphi")):
        row[f"hit_{name}"] = x[:, j]
    row["hit_layer"] = g["layer"].astype(np.float32) / np.float32(10.0)  # TrackingTransform
    pos = g["pos"].astype(np.float32)
    pid = g["particle_id"].astype(np.int64)
    row.update(hit_pos_eta=pos[:, 0], hit_pos_phi=pos[:, 1], hit_particle_id=pid, hit_pt=g["pt"],
               hit_reconstructable=g["reconstructable"], hit_particle_eta=np.nan_to_num(g["eta"]),
               hit_sector=g["sector"], hit_particle_nhits=g["n_hits"], hit_particle_nlayers=g["n_layers_hit"],
               hit_layer_id=g["layer"], hit_id=np.full(len(pid), -1, np.int64))  # HEPT keeps no hit ids
    return row


def graph_ids(mapping: dict, slices: dict) -> tuple[np.ndarray, np.ndarray]:
    """(event id, sector) of every graph, without reading the hits."""
    n = len(slices["x"]) - 1
    ev = np.array([int(mapping["evtid"][int(slices["evtid"][i])]) for i in range(n)], dtype=np.int64)
    sec = np.array([int(mapping["s"][int(slices["s"][i])]) for i in range(n)], dtype=np.int64)
    return ev, sec


def _particle_index(rows: list[dict]) -> None:
    """``hit_particle_index`` per event (consistent across its sectors): 1..P in particle_id order."""
    nz = np.unique(np.concatenate([r["hit_particle_id"] for r in rows]))
    nz = nz[nz > 0]
    for r in rows:
        p = r["hit_particle_id"]
        r["hit_particle_index"] = np.where(p > 0, np.searchsorted(nz, p) + 1, 0)


def extract_pt(source: str | os.PathLike, workdir: str | os.PathLike, pattern: str = "data-*.pt") -> Path:
    """The ``data-*.pt`` (``pattern``) of a HEPT zip (extracted into ``workdir``), of a folder, or the file itself."""
    import fnmatch

    src = Path(source)
    if src.is_file() and src.suffix == ".pt":
        return src
    if src.is_dir():
        found = sorted(src.rglob(pattern))
        if not found:
            raise HEPTFileError(f"{src} holds no HEPT {pattern} file")
        return found[0]
    if not src.is_file():
        raise HEPTFileError(f"{src} does not exist")
    try:
        z = zipfile.ZipFile(src)
    except (zipfile.BadZipFile, OSError) as err:
        raise HEPTFileError(f"{src} is not a readable zip file: {err}") from None
    with z:
        names = [n for n in z.namelist() if fnmatch.fnmatch(Path(n).name, pattern)]
        if not names:
            raise HEPTFileError(f"{src} holds no {pattern} (is it HEPT's *-processed.zip?)")
        target = Path(workdir) / Path(names[0]).name
        if not target.exists() or target.stat().st_size != z.getinfo(names[0]).file_size:
            tmp = target.with_name("." + target.name + ".part")
            target.parent.mkdir(parents=True, exist_ok=True)
            with z.open(names[0]) as fin, open(tmp, "wb") as fout:
                shutil.copyfileobj(fin, fout, 1 << 24)
            os.replace(tmp, target)
    return target


def convert_hept(source: str | os.PathLike, out_dir: str | os.PathLike, *, set_name: str | None = None,
                 progress: bool = True) -> dict:
    """HEPT processed zip / .pt -> ``out_dir/processed/{set}/{train,val,test}/event%09d.root`` (HEPT's own
    graph-level 80/10/10 split, ``get_new_idx_split``). Returns a summary (graphs, events, unpickler).

    Args:
        source: ``tracking-{60k,6k}-processed.zip``, its extracted folder, or the ``data-*.pt``.
        out_dir: dataset folder.
        set_name: "full" or "6k" (default: from the file name: 60k -> full, 6k -> 6k).
    """
    from tqdm import tqdm

    from partx.cli import writable_dir

    processed = writable_dir(Path(out_dir) / "processed")
    pt = extract_pt(source, processed / ".hept")
    if set_name is None:
        set_name = "6k" if "6k" in pt.name else "full"
    n_sectors = 10 if set_name == "6k" else 1
    mapping, slices, how = load_hept_processed(pt)
    evtid, sector = graph_ids(mapping, slices)
    split = hept_graph_split(evtid)
    written = 0
    for part, idx in split.items():
        by_event: dict[int, list[int]] = {}
        for i in idx:  # HEPT splits graphs: with few events, one event's sectors may straddle two splits
            by_event.setdefault(int(evtid[i]), []).append(int(i))
        for e, graphs in tqdm(sorted(by_event.items()), desc=f"HEPT {set_name} {part}", disable=not progress):
            ev_rows = [graph_row(mapping, slices, i, n_sectors) for i in sorted(graphs, key=lambda i: sector[i])]
            _particle_index(ev_rows)
            write_rows(processed / set_name / part / f"event{e:09d}.root", ev_rows)
            written += 1
    return {"graphs": len(evtid), "event_files": written, "set": set_name, "unpickler": how, "source": str(pt)}
