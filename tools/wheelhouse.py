"""An offline install of mtbench for air-gapped GPU machines, in two halves.

`build`, on a machine with internet: resolve every dependency of mtbench for the target's Python version, platform
and glibc, leave out torch (the GPU machine has its own CUDA build) and whatever only torch needs, download the
wheels (building a wheel of any pure-Python package that ships only as source, such as antlr4's runtime), add
mtbench's own wheel, and pack them into one archive cut into parts of at most `--part-mb` MiB (a part is a slice of
the archive, so the 150 MB warp-lang wheel spans several), with a manifest of SHA-256 sums.

`install`, on the GPU machine, no network: reassemble and check the parts, and install with `pip --no-index
--no-deps` against the torch already there; a package the machine already has at a version every requirement
accepts is left alone, so the image's own packages (numpy, ...) are not replaced for nothing. Then it imports the
project to prove it.

    python tools/wheelhouse.py build --python 3.12 --part-mb 50 --out wheelhouse     # make wheelhouse PY=3.12
    python3 tools/wheelhouse.py install --dir wheelhouse                            # make offline-install

Standard library and pip only (pip's bundled `packaging` where the standalone one is missing): the install half runs
before any of mtbench's dependencies exist.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import json
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LEFT_OUT = ("torch",)
"""Never in the wheelhouse: the GPU machine's own build is used (`--no-deps` keeps pip from asking for ours)."""
ARCHIVE = "mtbench-wheelhouse-{tag}.tar"
INDEX = "wheelhouse.json"


def _parts_module():
    """mtbench/parts.py by path: importing the package would need the very dependencies being installed."""
    spec = importlib.util.spec_from_file_location("mtbench_parts", ROOT / "mtbench" / "parts.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _packaging():
    try:
        from packaging.markers import Marker
        from packaging.requirements import Requirement
        from packaging.utils import canonicalize_name
        from packaging.version import Version
    except ImportError:  # pip always carries a copy
        from pip._vendor.packaging.markers import Marker
        from pip._vendor.packaging.requirements import Requirement
        from pip._vendor.packaging.utils import canonicalize_name
        from pip._vendor.packaging.version import Version
    return Requirement, Marker, canonicalize_name, Version


def _pip(*args: str, quiet: bool = True) -> None:
    cmd = [sys.executable, "-m", "pip", *args] + (["-q"] if quiet else [])
    print("+ " + " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True)


# ---------------------------------------------------------------------------------------------------------
# build


def project_requirements(extra: list[str]) -> list[str]:
    """mtbench's dependencies from pyproject.toml, less torch, plus `extra` (e.g. pytest for the tests)."""
    text = (ROOT / "pyproject.toml").read_text()
    block = re.search(r"^dependencies\s*=\s*\[(.*?)^\]", text, re.S | re.M)
    if block is None:
        raise SystemExit("pyproject.toml: no [project] dependencies list found")
    reqs = re.findall(r'^\s*"([^"]+)"', block.group(1), re.M)
    Requirement, *_ = _packaging()
    return [r for r in reqs if Requirement(r).name.lower() not in LEFT_OUT] + list(extra)


def target_flags(python: str, arch: str, glibc: str) -> list[str]:
    """pip's options for another interpreter and platform: CPython `python`, manylinux wheels up to `glibc`."""
    major, minor = python.split(".")[:2]
    g_major, g_minor = (int(x) for x in glibc.split(".")[:2])
    flags = ["--only-binary=:all:", "--python-version", f"{major}.{minor}", "--implementation", "cp"]
    for abi in (f"cp{major}{minor}", "abi3", "none"):
        flags += ["--abi", abi]
    platforms = [f"manylinux_{g_major}_{n}_{arch}" for n in range(g_minor, 4, -1)]
    platforms += [f"manylinux2014_{arch}", f"manylinux2010_{arch}", f"manylinux1_{arch}"]
    for p in platforms:
        flags += ["--platform", p]
    return flags


def _report(reqs: list[str], flags: list[str], links: Path, scratch: Path, name: str) -> list[dict]:
    """pip's resolution of `reqs` (nothing installed): [{name, version, url, requires_dist}]."""
    out = scratch / f"{name}.json"
    target = ["--target", str(scratch / f"{name}-target")] if flags else []
    _pip("install", "--dry-run", "--ignore-installed", "--report", str(out), "--find-links", str(links), *flags,
         *target, *reqs)  # fmt: skip
    rows = []
    for item in json.loads(out.read_text())["install"]:
        meta = item["metadata"]
        rows.append({"name": meta["name"], "version": meta["version"], "url": item["download_info"]["url"],
                     "requires_dist": meta.get("requires_dist", [])})  # fmt: skip
    return rows


def build_source_only(reqs: list[str], built: Path, scratch: Path) -> list[str]:
    """Wheels for the dependencies that exist only as source (resolved on this machine): they must be pure Python,
    since they are built here for another machine. Returns their names."""
    native = _report(reqs, [], built, scratch, "native")
    names = []
    for row in native:
        if row["url"].endswith(".whl"):
            continue
        _pip("wheel", "--no-deps", "-w", str(built), f"{row['name']}=={row['version']}")
        wheel = next(built.glob(f"{row['name'].replace('-', '_')}-{row['version']}-*.whl"), None)
        if wheel is None or not wheel.name.endswith("-none-any.whl"):
            raise SystemExit(f"{row['name']} {row['version']} ships only as source with compiled code; build its "
                             "wheel on a machine like the target and put it in the wheelhouse")  # fmt: skip
        names.append(row["name"])
    return names


def target_markers(python: str, arch: str) -> dict[str, str]:
    """The environment markers of a Linux CPython `python` on `arch` (markers are evaluated for the target, not for
    the interpreter running this)."""
    major, minor = python.split(".")[:2]
    return {"python_version": f"{major}.{minor}", "python_full_version": f"{major}.{minor}.0", "os_name": "posix",
            "sys_platform": "linux", "platform_system": "Linux", "platform_machine": arch,
            "implementation_name": "cpython", "platform_python_implementation": "CPython"}  # fmt: skip


def keep_without(
    resolved: list[dict], roots: list[str], left_out: list[str], markers: dict[str, str] | None = None
) -> tuple[list[dict], list[str]]:
    """The resolved packages reachable from `roots` without passing through `left_out` (torch): what torch alone
    needs (its CUDA libraries, triton, sympy, ...) stays out. An edge is followed when its marker holds on the target
    (`markers`) for the extras the requirement asked for (`etils[epath]` brings etils' epath dependencies)."""
    Requirement, _, canon, _ = _packaging()
    by_name = {canon(r["name"]): r for r in resolved}
    out = {canon(n) for n in left_out}
    extras: dict[str, set[str]] = {}
    todo = []
    for r in roots:
        req = Requirement(r)
        todo.append(canon(req.name))
        extras.setdefault(canon(req.name), set()).update(req.extras)
    seen: set[tuple[str, frozenset]] = set()
    kept_names: set[str] = set()
    while todo:
        name = todo.pop()
        key = (name, frozenset(extras.get(name, ())))
        if key in seen or name in out or name not in by_name:
            continue
        seen.add(key)
        kept_names.add(name)
        for dep in by_name[name]["requires_dist"]:
            req = Requirement(dep)
            wanted = ["", *sorted(extras.get(name, ()))]
            if req.marker is None or any(req.marker.evaluate({**(markers or {}), "extra": e}) for e in wanted):
                child = canon(req.name)
                extras.setdefault(child, set()).update(req.extras)
                todo.append(child)
    kept = [r for r in resolved if canon(r["name"]) in kept_names]
    dropped = sorted(r["name"] for r in resolved if canon(r["name"]) not in kept_names)
    return kept, dropped


def build(args: argparse.Namespace) -> None:
    parts = _parts_module()
    tag = f"cp{args.python.replace('.', '')}-{args.arch}"
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for old in [*out.glob(f"{ARCHIVE.format(tag=tag)}*")]:
        old.unlink()
    reqs = project_requirements(args.extra)
    flags = target_flags(args.python, args.arch, args.glibc)
    with tempfile.TemporaryDirectory() as tmp:
        scratch = Path(tmp)
        built, wheels = scratch / "built", scratch / "wheels"
        built.mkdir()
        wheels.mkdir()
        source_only = build_source_only(reqs, built, scratch)
        resolved = _report(reqs, flags, built, scratch, "target")
        markers = target_markers(args.python, args.arch)
        kept, dropped = keep_without(resolved, reqs, [*LEFT_OUT, *args.exclude], markers)
        pins = [f"{r['name']}=={r['version']}" for r in kept]
        _pip("download", "--no-deps", "--find-links", str(built), "-d", str(wheels), *flags, *pins)
        had_build = (ROOT / "build").exists()
        _pip("wheel", "--no-deps", "-w", str(wheels), str(ROOT))  # mtbench itself (pure Python)
        if not had_build:  # setuptools' scratch folder in the checkout
            shutil.rmtree(ROOT / "build", ignore_errors=True)
        files = sorted(wheels.glob("*.whl"))
        index = {
            "python": args.python, "arch": args.arch, "glibc": args.glibc, "created": time.strftime("%Y-%m-%d %H:%M"),
            "requirements": reqs, "left_out": [*LEFT_OUT, *args.exclude], "dropped": dropped,
            "built_from_source": source_only,
            "packages": [{k: r[k] for k in ("name", "version", "requires_dist")} for r in kept],
            "wheels": [{"file": f.name, "bytes": f.stat().st_size} for f in files],
        }  # fmt: skip
        (wheels / INDEX).write_text(json.dumps(index, indent=1) + "\n")
        archive = scratch / ARCHIVE.format(tag=tag)
        with tarfile.open(archive, "w") as tar:  # wheels are zip files already: no compression
            for f in [wheels / INDEX, *files]:
                tar.add(f, arcname=f.name)
        manifest = parts.split_file(archive, int(args.part_mb * (1 << 20)), out)
        total = sum(w["bytes"] for w in index["wheels"])
    info = json.loads(manifest.read_text())
    named = {n.lower().replace("_", "-") for n in index["left_out"]}
    also = [d for d in dropped if d.lower().replace("_", "-") not in named]
    print(f"\n{len(files)} wheels, {total / 2**20:.1f} MiB, for CPython {args.python} {args.arch} (glibc >= "
          f"{args.glibc}); left out: {', '.join(index['left_out'])}" + (f", and what only they need: "
          f"{', '.join(also)}" if also else "") + (f"; built from source: {', '.join(source_only)}"
          if source_only else ""))  # fmt: skip
    for p in info["parts"]:
        print(f"  {out / p['name']}  {p['bytes'] / 2**20:.1f} MiB")
    print(f"  {manifest}\nCopy the folder to the GPU machine, then: python3 tools/wheelhouse.py install --dir {out}")


# ---------------------------------------------------------------------------------------------------------
# install


def unpack(folder: Path, scratch: Path) -> Path:
    """Reassemble the wheelhouse archive from its parts in `folder` (checking every part) and unpack it."""
    parts = _parts_module()
    found = parts.manifests(folder)
    if len(found) != 1:
        raise SystemExit(f"{folder}: expected one wheelhouse manifest (*.parts.json), found {len(found)}")
    archive = parts.join_parts(found[0], scratch)
    unpacked = scratch / "wheels"
    with tarfile.open(archive) as tar:
        kw = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
        tar.extractall(unpacked, **kw)
    archive.unlink()
    return unpacked


def _wheel_requires(wheel: Path) -> list[str]:
    with zipfile.ZipFile(wheel) as z:
        meta = next(n for n in z.namelist() if n.endswith(".dist-info/METADATA"))
        text = z.read(meta).decode()
    return [line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("Requires-Dist:")]


def plan_install(unpacked: Path, index: dict) -> tuple[list[Path], list[str]]:
    """Which wheels to install: all but those whose distribution is already here at a version that every requirement
    of the wheelhouse (markers evaluated on this interpreter) accepts. Returns (wheels, lines saying what was kept)."""
    Requirement, _, canon, Version = _packaging()
    files = {w["file"]: unpacked / w["file"] for w in index["wheels"]}
    requires: list[str] = [d for p in index["packages"] for d in p["requires_dist"]]
    requires += [d for f in files.values() if f.name.startswith("mtbench-") for d in _wheel_requires(f)]
    specs: dict[str, list] = {}
    for dep in requires:
        req = Requirement(dep)
        if req.marker is not None and not req.marker.evaluate({"extra": ""}):
            continue
        specs.setdefault(canon(req.name), []).append(req.specifier)
    chosen, kept = [], []
    for name, path in sorted(files.items()):
        dist, version = name.split("-")[:2]
        try:
            have = importlib.metadata.version(dist.replace("_", "-"))
        except importlib.metadata.PackageNotFoundError:
            have = None
        wanted = specs.get(canon(dist), [])
        if have is not None and dist != "mtbench" and all(Version(have) in s for s in wanted):
            kept.append(f"{dist} {have} (wheelhouse: {version})")
            continue
        chosen.append(path)
    return chosen, kept


def install(args: argparse.Namespace) -> None:
    folder = Path(args.dir)
    with tempfile.TemporaryDirectory() as tmp:
        unpacked = unpack(folder, Path(tmp))
        index = json.loads((unpacked / INDEX).read_text())
        here = f"{sys.version_info.major}.{sys.version_info.minor}"
        if index["python"] != here:
            raise SystemExit(f"this wheelhouse is for Python {index['python']}, this interpreter is {here} "
                             f"({sys.executable}); build one with: make wheelhouse PY={here}")  # fmt: skip
        wheels, kept = plan_install(unpacked, index)
        if kept:
            print("already here, kept: " + "; ".join(kept))
        target = ["--target", args.target] if args.target else []
        if wheels:
            _pip("install", "--no-index", "--no-deps", "--no-compile", *target, *map(str, wheels))
    check(args.target)


def check(target: str | None) -> None:
    """Import the project and its engines with the machine's torch, and say what was found."""
    code = (
        "import torch, warp, mujoco, mujoco_warp, mtbench; "
        "print(f'ok: torch {torch.__version__} (CUDA available: {torch.cuda.is_available()}), warp-lang "
        "{warp.config.version}, mujoco {mujoco.__version__}, mtbench {mtbench.__version__} from {mtbench.__file__}')"
    )
    env = None
    if target:
        import os

        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (target, os.environ.get("PYTHONPATH")) if p)}
    subprocess.run([sys.executable, "-c", code], check=True, env=env, cwd=tempfile.gettempdir())
    if shutil.which("nvidia-smi") is None:
        print("(no nvidia-smi here: fine for a test install; on the GPU machine run `mtbench bench gpu` next)")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="gather the wheels for another machine (needs the internet)")
    b.add_argument("--python", default="3.12", help="the target's Python version (default 3.12)")
    b.add_argument("--arch", default="x86_64", help="x86_64 or aarch64 (default x86_64)")
    b.add_argument("--glibc", default="2.28", help="the oldest glibc of the targets (default 2.28)")
    b.add_argument("--part-mb", type=float, default=50.0, help="largest part, MiB (default 50)")
    b.add_argument("--out", default="wheelhouse", help="folder for the parts and the manifest")
    b.add_argument("--exclude", nargs="*", default=[], help="more packages to leave out (the target has them)")
    b.add_argument("--extra", nargs="*", default=[], help="more requirements, e.g. pytest pytest-xdist")
    i = sub.add_parser("install", help="install from the parts, offline")
    i.add_argument("--dir", default="wheelhouse", help="the folder holding the parts and the manifest")
    i.add_argument("--target", default=None, help="install into this folder (then put it on PYTHONPATH)")
    args = parser.parse_args(argv)
    build(args) if args.command == "build" else install(args)


if __name__ == "__main__":
    main()
