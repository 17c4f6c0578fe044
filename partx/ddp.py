"""Multi-process (DDP) training with weaver-core, on GPUs (nccl) or on CPU (gloo); used by partx.launcher for DDP_NGPUS > 1.

    python -m partx.ddp --nproc N [--backend nccl|gloo] [weaver args...]

Why not ``torchrun ... weaver``: torchrun parses the whole command line with argparse, which
rejects weaver's ``--log`` as an ambiguous prefix of torchrun's own ``--log-dir``/``--logs-specs``
even after the script name. Workers are started here with torch's ``elastic_launch`` API
(the machinery behind torchrun) instead, so weaver's arguments pass through untouched.

On CPU (gloo), weaver 0.5.3's DDP branch assumes CUDA. It is entered as on GPUs (``--gpus 0``),
and inside each worker process only, ``weaver.train`` sees a torch whose device ids map to the CPU:
  * ``torch.device(rank)`` -> ``cpu`` and ``torch.cuda.set_device`` -> no-op, in weaver.train's
    namespace only (the process group itself is gloo, created by weaver);
  * DDP is built without ``device_ids`` / ``output_device`` (they must be None for CPU modules);
  * BatchNorm stays per-process: SyncBatchNorm has no CPU implementation. Gradients are still
    all-reduced every step, which is what keeps the replicas one model.

The test step does not run inside the DDP workers: weaver 0.5.3 tests on rank 0 only while the other
ranks return, but its ``evaluate_classification`` still calls ``all_gather`` when a process group
exists, so rank 0 waits forever (with nccl as with gloo). The workers run ``train,val``; once they
finish, this launcher runs weaver once more, single-process, for ``test`` on the best checkpoint.
``{auto}`` in ``--model-prefix`` / ``--log`` is resolved here so both steps use the same paths.

weaver splits the training files of each ``name:`` group between ranks: every group needs at
least as many files as processes.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
import uuid


def _cpu_ddp_patches() -> None:
    import types

    import torch
    import weaver.train

    ddp = torch.nn.parallel.DistributedDataParallel

    def cpu_ddp(module, *args, device_ids=None, output_device=None, **kwargs):
        return ddp(module, *args, **kwargs)

    def cpu_device(*args, **kwargs):
        return torch.device("cpu") if args and isinstance(args[0], int) else torch.device(*args, **kwargs)

    class CPUCuda(types.ModuleType):
        def __getattr__(self, name):
            return (lambda *a, **k: None) if name == "set_device" else getattr(torch.cuda, name)

    class CPUTorch(types.ModuleType):
        device = staticmethod(cpu_device)
        cuda = CPUCuda("cuda")

        def __getattr__(self, name):
            return getattr(torch, name)

    weaver.train.torch = CPUTorch("torch")
    torch.nn.parallel.DistributedDataParallel = cpu_ddp
    torch.nn.SyncBatchNorm.convert_sync_batchnorm = classmethod(lambda cls, module, process_group=None: module)


def _worker(backend: str, weaver_args: list[str]) -> None:
    import torch.distributed as dist
    from weaver.train import main as weaver_main

    from partx.weaver_run import install

    install()  # atomic checkpoints, one line for a non-finite loss (as in single-process runs)

    args = ["--backend", backend, *weaver_args]
    if backend == "gloo":
        _cpu_ddp_patches()
        args += ["--gpus", "0", "--predict-gpus", ""]  # argparse keeps the last value
    sys.argv = ["weaver", *args]
    try:
        weaver_main()
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()


def _option(args: list[str], flag: str) -> str | None:
    """Last value given for ``flag`` (argparse semantics), or None."""
    value = None
    for i, a in enumerate(args[:-1]):
        if a == flag:
            value = args[i + 1]
    return value


def _drop_option(args: list[str], flag: str) -> list[str]:
    """``args`` without any ``flag value`` / ``flag=value`` (partx.run_folder.set_option with no value)."""
    from partx.run_folder import set_option

    return set_option(args, flag, None)


def _resolve_auto(args: list[str]) -> list[str]:
    """Replace weaver's ``{auto}`` placeholder once, so the train and test steps agree on paths."""
    network = os.path.basename(_option(args, "--network-config") or "model").removesuffix(".py")
    name = time.strftime("%Y%m%d-%H%M%S") + "_" + network + "_ddp"
    return [a.replace("{auto}", name) for a in args]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="DDP launcher for weaver-core (see module docstring)", allow_abbrev=False)
    parser.add_argument("--nproc", type=int, required=True, help="processes (one per GPU, or CPU workers)")
    parser.add_argument("--backend", choices=["nccl", "gloo"], default=None, help="default: nccl with CUDA, else gloo")
    opts, weaver_args = parser.parse_known_args(argv)
    if opts.nproc < 1:
        parser.error(f"--nproc must be >= 1, got {opts.nproc}")

    import torch
    from torch.distributed.launcher.api import LaunchConfig, elastic_launch

    backend = opts.backend or ("nccl" if torch.cuda.is_available() else "gloo")
    if backend == "nccl" and not torch.cuda.is_available():
        parser.error("--backend nccl needs CUDA; use gloo on CPU")
    if "--predict" in weaver_args:
        parser.error("--predict runs in one process: call weaver directly (DDP_NGPUS=1)")
    weaver_args = _resolve_auto(weaver_args)
    run_mode = (_option(weaver_args, "--run-mode") or "train,val,test").split(",")
    train_args = _drop_option(weaver_args, "--run-mode") + ["--run-mode", ",".join(m for m in run_mode if m != "test")]
    if backend == "gloo":
        train_args = _drop_option(train_args, "--gpus")
    config = LaunchConfig(
        min_nodes=1, max_nodes=1, nproc_per_node=opts.nproc, run_id=str(uuid.uuid4()),
        rdzv_backend="c10d", rdzv_endpoint="localhost:0", max_restarts=0, monitor_interval=1,
    )
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // opts.nproc)))
    elastic_launch(config, entrypoint=_worker)(backend, train_args)

    if "test" in run_mode and _option(weaver_args, "--data-test"):
        test_args = _drop_option(_drop_option(weaver_args, "--run-mode"), "--backend") + ["--run-mode", "test"]
        if backend == "gloo":
            test_args = _drop_option(test_args, "--gpus") + ["--gpus", ""]
        return subprocess.call([sys.executable, "-m", "partx.weaver_run", *test_args])
    return 0


if __name__ == "__main__":
    sys.exit(main())
