"""The machine under test, and Warp's kernel cache.

On a fresh GPU machine Warp compiles every kernel module for CUDA the first time it is launched, serially and
silently (minutes for MuJoCo Warp's collision modules). The compiled modules land in Warp's kernel cache
(`WARP_CACHE_PATH`, default ~/.cache/warp/<version>): `mtbench bench gpu` reports how long the compile took, can
start from a cache saved on an earlier machine (`kernel_cache=`) and can save the warmed one (`save_kernel_cache=`)
as one archive, or as parts of a chosen size to move through small channels.
"""

from __future__ import annotations

import os
import platform
import shutil
import sys
import tarfile
from pathlib import Path

import torch

from mtbench.parts import join_parts, split_file


def _warp_started() -> bool:
    mod = sys.modules.get("warp._src.context")
    return mod is not None and getattr(mod, "runtime", None) is not None


def use_kernel_cache(spec: str | None, scratch: Path) -> str:
    """Point Warp's kernel cache at `spec` before Warp starts: a folder (used in place), a `.tar.gz` written by
    `save_kernel_cache`, or the manifest (`*.parts.json`) of its parts (reassembled and unpacked under `scratch`).
    None keeps Warp's own choice. Returns a line for the report."""
    if spec is None:
        where = os.environ.get("WARP_CACHE_PATH")
        return f"Warp's kernel cache: {where + ' (WARP_CACHE_PATH)' if where else 'its default folder'}"
    path = Path(spec)
    if not path.exists():
        raise FileNotFoundError(f"kernel_cache={spec}: no such folder or archive")
    how = "a folder"
    if path.is_file():
        if path.name.endswith(".parts.json"):
            path = join_parts(path, scratch)
            how = "reassembled parts"
        else:
            how = "an archive"
        folder = scratch / "warp-kernel-cache"
        folder.mkdir(parents=True, exist_ok=True)
        with tarfile.open(path) as tar:
            kw = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
            tar.extractall(folder, **kw)
        path = folder
    os.environ["WARP_CACHE_PATH"] = str(path.resolve())
    if _warp_started():  # too late for the variable: move the live cache (Warp's own initialiser, not public API)
        import warp._src.build as wbuild

        wbuild.init_kernel_cache(str(path.resolve()))
    return f"Warp's kernel cache: {path} (from {how}: kernel_cache={spec})"


def kernel_cache_dir() -> Path:
    """The folder Warp compiles into (its version's subfolder of WARP_CACHE_PATH); starts Warp."""
    import warp as wp

    wp.init()
    return Path(wp.config.kernel_cache_dir)


def cache_modules(folder: Path) -> int:
    """Kernel modules in the cache: one folder each."""
    return sum(1 for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else 0


def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def save_kernel_cache(dest: Path, part_mb: float | None) -> list[Path]:
    """Pack the warmed cache into `dest` (.tar.gz; extracting it into a folder and pointing WARP_CACHE_PATH there, or
    passing it as `kernel_cache=`, reuses it), split into parts of `part_mb` MiB when given. Returns the files."""
    folder = kernel_cache_dir()
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(dest, "w:gz") as tar:
        tar.add(folder, arcname=folder.name)  # <version>/...: Warp's layout under WARP_CACHE_PATH
    if not part_mb:
        return [dest]
    manifest = split_file(dest, int(part_mb * (1 << 20)))
    dest.unlink()
    return sorted(dest.parent.glob(f"{dest.name}.part[0-9]*")) + [manifest]


def facts(device: torch.device) -> list[tuple[str, str]]:
    """What the report names: the GPU, its memory, the library versions and the Warp features capture relies on."""
    import mujoco
    import mujoco_warp
    import warp as wp

    wp.init()
    rows = [
        ("python", platform.python_version()),
        ("torch", f"{torch.__version__} (CUDA {torch.version.cuda})"),
        ("warp-lang", wp.config.version),
        ("mujoco / mujoco-warp", f"{mujoco.__version__} / {getattr(mujoco_warp, '__version__', '?')}"),
        ("CPU cores", str(os.cpu_count())),
    ]
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        free, total = torch.cuda.mem_get_info(device)
        wdev = wp.get_device(f"cuda:{device.index or 0}")
        rows += [
            (
                "GPU",
                f"{props.name} (compute capability {props.major}.{props.minor}, {props.multi_processor_count} SMs)",
            ),
            ("GPU memory", f"{total / 2**30:.1f} GiB, {free / 2**30:.1f} GiB free"),
            ("CUDA driver (Warp)", str(getattr(wp, "get_cuda_driver_version", lambda: "?")())),
            ("Warp memory pool (needed to capture MuJoCo Warp's step)", str(wp.is_mempool_enabled(wdev))),
            ("conditional graph nodes (MuJoCo Warp's solver loop)", str(wp.is_conditional_graph_supported())),
        ]
        smi = shutil.which("nvidia-smi")
        rows.append(("nvidia-smi", smi or "not found"))
    else:
        rows.append(("device", "CPU (dry run: Warp's CPU device, torch's CPU; no CUDA graphs)"))
    rows.append(("Warp kernel cache", str(kernel_cache_dir())))
    return rows
