"""Replay recorded real-Meta-World episodes (tests/data/reference_*.npz, made by
tools/record_reference.py) through our task code and measure how far we are from the reference.

Each recorded episode becomes one world. The reset is ours: template state + `place` from the recorded
reset vector. Every later step loads the recorded physics state, recomputes kinematics and scores the
recorded action. One-step physics is checked separately: load state t, apply action t+1, compare t+1.
"""

from __future__ import annotations

import glob
import os
from dataclasses import dataclass

import numpy as np
import torch

from mtbench.envs.metaworld.scene import FRAME_SKIP
from mtbench.envs.metaworld.task import MetaWorldTask
from mtbench.sim.cpu import CpuBlock

DATA_DIR = os.path.join(os.path.dirname(__file__), "data")


@dataclass
class Report:
    task: str
    obs_err: float = 0.0
    reward_rel_err: float = 0.0
    success_mismatch: int = 0
    steps: int = 0
    worst: str = ""


class ReferenceData(dict):
    """All recorded files merged into one lazy mapping `{task}/{field}` -> array (each task lives in
    exactly one file; `meta/*` keys come from the first file)."""

    def __init__(self, paths: list[str]):
        super().__init__()
        self.files = [np.load(p) for p in paths]
        self._where: dict[str, np.lib.npyio.NpzFile] = {}
        for f in self.files:
            for key in f.files:
                if key.startswith("meta/") and key in self._where:
                    continue
                if key in self._where:
                    raise ValueError(f"reference key {key} recorded twice")
                self._where[key] = f

    def __getitem__(self, key: str) -> np.ndarray:
        return self._where[key][key]

    def __contains__(self, key: object) -> bool:
        return key in self._where

    def tasks(self) -> list[str]:
        return sorted({k.split("/")[0] for k in self._where if not k.startswith("meta/")})


def load() -> ReferenceData:
    paths = sorted(glob.glob(os.path.join(DATA_DIR, "reference_*.npz")))
    if not paths:
        raise FileNotFoundError(f"no reference data in {DATA_DIR}; run `make reference`")
    return ReferenceData(paths)


def _rows(d, task: str) -> tuple[np.ndarray, int]:
    ep = d[f"{task}/episode"]
    n_ep = int(ep.max()) + 1
    return ep, n_ep


def check_place(task: MetaWorldTask, d) -> dict[str, float]:
    """Our reset from the recorded reset vectors vs the reference's reset: max abs error per quantity.
    Heights that come from settled physics differ by the engine version (MuJoCo 4 here, 3.3 there)."""
    name = task.name
    r0 = np.nonzero(d[f"{name}/is_reset"])[0]
    sim = CpuBlock(task.model(), len(r0), nthread=1)
    s = task.make_state(sim)
    ids = torch.arange(len(r0))
    s.restore_template(ids)
    task.place(s, ids, torch.from_numpy(d[f"{name}/rand_vec"][r0]))
    sim.forward()
    out = {"qpos": float(np.abs(sim.qpos.numpy() - d[f"{name}/qpos"][r0]).max())}
    for ours, key in ((s.obj_init_pos, "obj_init_pos"), (s.target_pos, "target_pos"), (s.init_tcp, "init_tcp")):
        out[key] = float(np.abs(ours.numpy() - d[f"{name}/{key}"][r0]).max())
    nbody = sim.model.nbody
    out["body_pos"] = float(np.abs(sim.body_pos.numpy() - d[f"{name}/body_pos"][:, :nbody]).max())
    for key, attr in task.episode_attrs.items():
        ref = d[f"{name}/attr/{attr}"][r0]
        out[f"episode/{key}"] = float(np.abs(s.episode[key].numpy().reshape(ref.shape) - ref).max())
    return out


def replay(task: MetaWorldTask, d) -> Report:
    """Score every recorded state (reset rows included) with our code, given the recorded per-episode
    values, and compare observation, reward and success with the reference's."""
    name = task.name
    ep, n_ep = _rows(d, name)
    rows = [np.nonzero(ep == e)[0] for e in range(n_ep)]
    length = min(len(r) for r in rows)
    rows = np.stack([r[:length] for r in rows])  # (n_ep, T)
    rep = Report(name)

    sim = CpuBlock(task.model(), n_ep, nthread=1)
    s = task.make_state(sim)
    r0 = rows[:, 0]
    assert d[f"{name}/is_reset"][r0].all()
    # the episode's model edits and per-episode values, as the reference had them
    sim.body_pos[:] = torch.from_numpy(d[f"{name}/body_pos"][d[f"{name}/step_episode"][r0]])
    for key in ("obj_init_pos", "target_pos", "init_tcp"):
        getattr(s, key)[:] = torch.from_numpy(d[f"{name}/{key}"][r0])
    for key, attr in task.episode_attrs.items():
        s.episode[key] = torch.from_numpy(d[f"{name}/attr/{attr}"][r0].astype(np.float64))
    low, high = (torch.from_numpy(b) for b in task.obs_box())

    errs, rel, mism, prev = [], [], 0, None
    for t in range(length):
        r = rows[:, t]
        for f in ("qpos", "qvel", "mocap_pos", "mocap_quat"):
            getattr(sim, f)[:] = torch.from_numpy(d[f"{name}/{f}"][r])
        sim.forward()
        frame = task.frame(s)
        prev = frame if t == 0 else prev
        obs = torch.clamp(torch.cat((frame, prev, s.target_pos), 1), low, high)
        prev = frame
        diff = np.abs(obs.numpy() - d[f"{name}/obs"][r])
        if task.reset_obs_stale_in_reference and t <= 1:
            # Meta-World's reset obs of this task is read from stale kinematics; ours is the true state.
            # Skip the reset frame: the reset row, and step 1's previous-frame half.
            diff = diff[:, :18] if t == 1 else diff[:, :0]
        errs.append(diff.max(initial=0.0))
        if t == 0:
            continue
        action = torch.from_numpy(d[f"{name}/action"][r].astype(np.float64)).clamp(-1, 1)
        reward, success = task.evaluate(s, obs, action)
        ref_r = d[f"{name}/reward"][r]
        rel.append(np.abs(reward.numpy() - ref_r) / np.maximum(1.0, np.abs(ref_r)))
        mism += int((success.numpy() != d[f"{name}/success"][r]).sum())
        if rel[-1].max() > 1e-4 and not rep.worst:
            e = int(rel[-1].argmax())
            rep.worst = f"t={t} ep={e} ours={reward[e].item():.6f} ref={ref_r[e]:.6f}"
    rep.obs_err = float(max(errs))
    rep.reward_rel_err = float(np.max(rel))
    rep.success_mismatch = mism
    rep.steps = n_ep * length
    return rep


def one_step_physics(task: MetaWorldTask, d) -> np.ndarray:
    """Per recorded step, max |qpos error| after one control step from the recorded state (MuJoCo 4 here
    vs the reference's 3.3)."""
    name = task.name
    reset = d[f"{name}/is_reset"]
    nxt = np.nonzero(~reset)[0]
    cur = nxt - 1
    sim = CpuBlock(task.model(), len(nxt), nthread=1)
    s = task.make_state(sim)
    ep = d[f"{name}/step_episode"][cur]
    body = torch.from_numpy(d[f"{name}/body_pos"][ep])
    sim.body_pos[:] = body
    for f in ("qpos", "qvel", "mocap_pos", "mocap_quat", "qacc_warmstart", "ctrl"):
        getattr(sim, f)[:] = torch.from_numpy(d[f"{name}/{f}"][cur])
    a = torch.from_numpy(d[f"{name}/action"][nxt].astype(np.float64)).clamp(-1, 1)
    mlow, mhigh = (torch.from_numpy(b) for b in task.mocap_box)
    sim.mocap_pos[:, 0] = torch.maximum(torch.minimum(sim.mocap_pos[:, 0] + 0.01 * a[:, :3], mhigh), mlow)
    sim.ctrl[:, 0], sim.ctrl[:, 1] = a[:, 3], -a[:, 3]
    sim.step(FRAME_SKIP)
    del s
    return np.abs(sim.qpos.numpy() - d[f"{name}/qpos"][nxt]).max(axis=1)
