"""Checkpoint files: written so that a crash or a full disk never costs the previous one, read without running
any code they could carry.

Writing goes to a temporary file in the same directory, flushed and fsynced, then renamed over the target and
the directory fsynced: after a power cut either the old or the new file is there, whole. Reading uses
`torch.load(weights_only=True)`, which unpickles tensors and plain data only, so a checkpoint from a stranger
cannot execute anything; everything we save is tensors, numbers, strings, lists and dicts.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from mtbench.errors import RunStopped, UserError

REQUIRED_KEYS = ("agent", "env", "rl_gen", "iteration", "frames", "task_ids", "task_names", "obs_dim", "config")
"""What every training checkpoint holds; a file without them is not ours."""


def save_checkpoint(obj: dict, path: Path) -> None:
    """Write `obj` to `path` durably and atomically; a failed write (disk full, permissions) removes its
    temporary file, leaves any previous `path` untouched and stops the run (RunStopped)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        with open(tmp, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    except (OSError, RuntimeError) as e:  # torch reports some write failures as RuntimeError
        tmp.unlink(missing_ok=True)
        kept = f"the previous {path.name} is intact" if path.exists() else f"no {path.name} was written"
        why = getattr(e, "strerror", None) or str(e).splitlines()[0]
        raise RunStopped(
            f"could not write checkpoint {path} ({why}); {kept}. Free space (or fix permissions), then resume "
            f"with checkpoint=<the last checkpoint>"
        ) from e
    except BaseException:  # interrupted (Ctrl-C, a torchrun rank stopped by SIGTERM): the previous file stays
        tmp.unlink(missing_ok=True)
        raise


def _fsync_dir(directory: Path) -> None:
    """Make a rename in `directory` durable (POSIX); a no-op where directories cannot be opened (Windows)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def load_checkpoint_file(path: str | Path, what: str = "checkpoint") -> dict:
    """A training checkpoint's contents on the CPU; a missing, truncated, corrupted, foreign or code-carrying
    file is a UserError naming it (`what` is the key it was given as: checkpoint, pretrained, policy)."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{what}={path} does not exist")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - zip, pickle and EOF errors all mean the same to the user
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        if "weights_only" in str(e) or "Unsupported global" in str(e):
            first = "it holds Python objects beyond tensors and plain data, which are not loaded (unsafe)"
        raise UserError(f"{what}={path} cannot be read as an mtbench checkpoint: {first[:200]}") from None
    missing = [k for k in REQUIRED_KEYS if not isinstance(ckpt, dict) or k not in ckpt]
    if missing:
        raise UserError(f"{what}={path} is not an mtbench training checkpoint (no {', '.join(missing)})")
    return ckpt
