"""A run directory and what goes into it: resolved config, metrics (JSONL, CSV, TensorBoard, optionally
W&B), checkpoints (`mtbench.checkpoint`: durable, atomic)."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from mtbench.checkpoint import save_checkpoint


def _jsonable(v: float) -> float | None:
    return None if isinstance(v, float) and not math.isfinite(v) else v


class RunLog:
    """Everything a run writes, under runs/<experiment>/. With `write=False` (the ranks of a torchrun job but rank 0)
    it knows the paths and writes nothing."""

    def __init__(self, cfg: DictConfig, resume: bool = False, write: bool = True):
        self.dir = Path(cfg.runs_dir) / cfg.experiment
        self.ckpt_dir = self.dir / "checkpoints"
        self.write = write
        if not write:
            return
        self.ckpt_dir.mkdir(parents=True, exist_ok=True)
        (self.dir / "config.yaml").write_text(OmegaConf.to_yaml(cfg))
        self.jsonl = open(self.dir / "metrics.jsonl", "a" if resume else "w")
        self.csv_path = self.dir / "metrics.csv"
        self.csv_fields: list[str] | None = None
        if resume and self.csv_path.exists():
            with open(self.csv_path) as f:
                self.csv_fields = next(csv.reader(f), None)
        self.csv = open(self.csv_path, "a" if resume else "w", newline="")
        from torch.utils.tensorboard import SummaryWriter

        self.tb = SummaryWriter(str(self.dir / "tb"))
        self.wandb = None
        if cfg.wandb_activate:
            try:
                import wandb
            except ImportError as e:
                raise RuntimeError("wandb_activate=True needs Weights & Biases: pip install wandb") from e
            self.wandb = wandb.init(
                project=cfg.wandb_project, entity=cfg.wandb_entity, group=cfg.wandb_group,
                name=cfg.wandb_name or cfg.experiment, config=OmegaConf.to_container(cfg), dir=str(self.dir),
                resume="allow",
            )  # fmt: skip

    def log(self, row: dict[str, float]) -> None:
        """One iteration's scalars: keys like 'success/reach-v3', 'loss/value'; 'frames' is the x-axis."""
        if not self.write:
            return
        self.jsonl.write(json.dumps({k: _jsonable(v) for k, v in row.items()}) + "\n")
        self.jsonl.flush()
        if self.csv_fields is None:
            self.csv_fields = list(row)
            csv.writer(self.csv).writerow(self.csv_fields)
        csv.writer(self.csv).writerow([row.get(k, "") for k in self.csv_fields])
        self.csv.flush()
        step = int(row["frames"])
        for k, v in row.items():
            if k not in ("frames", "iteration") and math.isfinite(v):
                self.tb.add_scalar(k, v, step)
        if self.wandb is not None:
            self.wandb.log(row, step=step)

    def save(self, state: dict, name: str) -> Path:
        path = self.ckpt_dir / name
        if self.write:
            save_checkpoint(state, path)
        return path

    def close(self) -> None:
        if not self.write:
            return
        self.jsonl.close()
        self.csv.close()
        self.tb.close()
        if self.wandb is not None:
            self.wandb.finish()


def read_metrics(run_dir: Path) -> list[dict]:
    with open(Path(run_dir) / "metrics.jsonl") as f:
        return [json.loads(line) for line in f if line.strip()]
