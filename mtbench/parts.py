"""Split a file into parts of at most a given size, and join them back, checking every byte.

Air-gapped GPU machines are often reached through channels that cap what one transfer may carry (a file size limit,
a size per upload): a wheelhouse or a warmed Warp kernel cache is moved as numbered slices of one archive plus a
small manifest, and reassembled on arrival. A part is a slice of the archive, so one file larger than a part (the
warp-lang wheel is about 150 MB) simply spans several.

Standard library only: `tools/wheelhouse.py` loads this file by path on a machine where mtbench's dependencies (the
very packages it installs) are still missing.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

MANIFEST_SUFFIX = ".parts.json"
CHUNK = 1 << 20


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(CHUNK):
            h.update(block)
    return h.hexdigest()


def split_file(path: Path, part_bytes: int, out_dir: Path | None = None) -> Path:
    """Write `path` as `<name>.part000`, `.part001`, ... of at most `part_bytes` each into `out_dir` (default: beside
    it), with a manifest `<name>.parts.json` (sizes and SHA-256 of every part and of the whole). Returns the manifest.
    """
    if part_bytes < 1:
        raise ValueError(f"part size must be >= 1 byte, got {part_bytes}")
    path = Path(path)
    out_dir = Path(out_dir) if out_dir is not None else path.parent
    out_dir.mkdir(parents=True, exist_ok=True)
    parts = []
    with open(path, "rb") as src:
        index = 0
        while True:
            name = f"{path.name}.part{index:03d}"
            h, written = hashlib.sha256(), 0
            with open(out_dir / name, "wb") as dst:
                while written < part_bytes and (block := src.read(min(CHUNK, part_bytes - written))):
                    dst.write(block)
                    h.update(block)
                    written += len(block)
            if written == 0 and index > 0:  # the previous part ended exactly at the end of the file
                (out_dir / name).unlink()
                break
            parts.append({"name": name, "bytes": written, "sha256": h.hexdigest()})
            index += 1
            if written < part_bytes:
                break
    manifest = {"file": path.name, "bytes": path.stat().st_size, "sha256": _sha256(path), "parts": parts}
    out = out_dir / f"{path.name}{MANIFEST_SUFFIX}"
    out.write_text(json.dumps(manifest, indent=1) + "\n")
    return out


def join_parts(manifest: Path, out_dir: Path | None = None) -> Path:
    """Reassemble the file a manifest of `split_file` describes, from the parts beside the manifest, into `out_dir`
    (default: beside it). A missing, truncated or altered part is an error naming it; returns the file's path."""
    manifest = Path(manifest)
    info = json.loads(manifest.read_text())
    out_dir = Path(out_dir) if out_dir is not None else manifest.parent
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / info["file"]
    missing = [p["name"] for p in info["parts"] if not (manifest.parent / p["name"]).is_file()]
    if missing:
        raise FileNotFoundError(f"parts missing beside {manifest}: {', '.join(missing)}; copy every part there")
    tmp = target.with_name(target.name + ".joining")
    whole = hashlib.sha256()
    with open(tmp, "wb") as dst:
        for p in info["parts"]:
            h = hashlib.sha256()
            with open(manifest.parent / p["name"], "rb") as src:
                while block := src.read(CHUNK):
                    h.update(block)
                    whole.update(block)
                    dst.write(block)
            if h.hexdigest() != p["sha256"]:
                tmp.unlink()
                raise ValueError(f"part {p['name']} is damaged (SHA-256 differs from {manifest.name}); copy it again")
    if whole.hexdigest() != info["sha256"]:
        tmp.unlink()
        raise ValueError(f"{info['file']} reassembled from {manifest.name} does not match its SHA-256")
    tmp.replace(target)
    return target


def manifests(folder: Path) -> list[Path]:
    """The part manifests in `folder`, by name."""
    return sorted(Path(folder).glob(f"*{MANIFEST_SUFFIX}"))
