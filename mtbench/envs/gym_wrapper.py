"""A `gymnasium.vector.VectorEnv` face over any suite's env, so that gymnasium's wrappers, Meta-World's own evaluation
and CleanRL-style scripts drive it unchanged (numpy in and out, or torch tensors on the env's device).

Auto-reset: SAME_STEP (the default, as Meta-World's vector envs: a finished env's returned observation starts its
next episode, `infos["final_obs"]` holds the last one) or NEXT_STEP (gymnasium's default: the ended episode's last
observation is returned, and the step after it is a reset step whose action is ignored, with reward 0 and no
termination or truncation), which gymnasium's `NormalizeObservation` needs.

Info layout, every key `k` with its bool mask `_k` (gymnasium's vector convention):
- SAME_STEP, as Meta-World's vector envs: `success` (float, this step; masked off for envs that ended, whose last
  step lives in `final_info`), `task_id`, `final_obs`, `final_info` with `success` and `episode` (`r`, `l`, `t`).
- NEXT_STEP: `success` (masked off on reset steps), `task_id`.
- Both: `mtbench_episode`, the env's own per-episode statistics (`done`, `return`, `length`, `success` at any step,
  `task_id`, suite extras), masked to the episodes that ended. The top-level key `episode` stays free for
  gymnasium's `RecordEpisodeStatistics`.
"""

from __future__ import annotations

import time
from typing import Any, Literal

import gymnasium as gym
import numpy as np
import torch
from gymnasium.vector import AutoresetMode

from mtbench.envs.core import MultiTaskVecEnv

TENSORS = ("numpy", "torch")
"""What the face takes and returns: numpy arrays (host copies), or the env's own torch tensors (zero-copy)."""
EPISODE_KEY = "mtbench_episode"
"""The info key of the env's own per-episode statistics: collides with nothing gymnasium or Meta-World writes."""
AUTORESET_MODES = (AutoresetMode.SAME_STEP, AutoresetMode.NEXT_STEP)
METAWORLD_OBS_DIM = 39


def with_masks(values: dict[str, Any], mask: torch.Tensor) -> dict[str, Any]:
    """gymnasium's vector info convention: each key `k` (nested dicts too) paired with the bool mask `_k` of the envs
    it holds a value for; one mask for every key here."""
    out: dict[str, Any] = {}
    for key, value in values.items():
        out[key] = with_masks(value, mask) if isinstance(value, dict) else value
        out[f"_{key}"] = mask
    return out


def to_numpy(value: Any) -> Any:
    """Tensors (nested in dicts too) as numpy arrays that own their memory: a caller keeping them is never changed by
    a later step, and two keys built from one tensor (the masks) never share a buffer."""
    if isinstance(value, dict):
        return {k: to_numpy(v) for k, v in value.items()}
    if isinstance(value, torch.Tensor):
        return value.detach().to("cpu", copy=True).numpy()
    return value


def is_metaworld(env: MultiTaskVecEnv) -> bool:
    """Whether `env` is of the Meta-World suite, whose conventions (39-d observation, terminate on success) apply."""
    from mtbench.envs.metaworld.env import MetaWorldVecEnv

    return isinstance(env, MetaWorldVecEnv)


def metaworld_class_names(task_names: list[str]) -> list[str]:
    """Meta-World's env class names (`SawyerReachEnvV3`) of Meta-World task names: what its sub-envs' `task_name`
    attribute holds and what `metaworld.evaluation` maps back to task names."""
    from metaworld.env_dict import ALL_V3_ENVIRONMENTS

    return [ALL_V3_ENVIRONMENTS[name].__name__ for name in task_names]


class GymVectorEnv(gym.vector.VectorEnv):
    """Any suite's env as a gymnasium vector env; the action space is the env's clip range.

    autoreset_mode: `AutoresetMode.SAME_STEP` (default) or `NEXT_STEP` (Meta-World suite only, see `_step_next`).
    tensors: "numpy" (numpy in, numpy out, what gymnasium's wrappers take) or "torch" (torch tensors on `env.device`
      in and out: no host copies; the infos hold tensors, and the Meta-World layout's wall-clock `t` is left out).
    use_one_hot: False drops the one-hot task id, leaving Meta-World's 39-d observation (Meta-World suite only).

    Meta-World's sub-env attributes are answered for the whole batch (`get_attr`, `call`, `set_attr`): `task_name`
    (Meta-World class names), `terminate_on_success`, `toggle_terminate_on_success(flag)`; any other name is read
    from (or called on) the wrapped env and repeated per env.
    """

    metadata: dict[str, Any] = {"autoreset_mode": AutoresetMode.SAME_STEP}

    def __init__(
        self,
        env: MultiTaskVecEnv,
        autoreset_mode: AutoresetMode | str = AutoresetMode.SAME_STEP,
        tensors: Literal["numpy", "torch"] = "numpy",
        use_one_hot: bool = True,
    ):
        try:
            mode = AutoresetMode(autoreset_mode)
        except ValueError:
            mode = None
        if mode not in AUTORESET_MODES:
            raise ValueError(
                f"autoreset_mode must be one of {[m.value for m in AUTORESET_MODES]}, got {autoreset_mode!r} (the env "
                "always resets ended episodes itself, so DISABLED is not offered)"
            )
        if tensors not in TENSORS:
            raise ValueError(f"tensors must be one of {TENSORS}, got {tensors!r}")
        metaworld = is_metaworld(env)
        if mode is AutoresetMode.NEXT_STEP and not metaworld:
            raise ValueError(
                f"autoreset_mode=NEXT_STEP is offered for Meta-World envs only, not {type(env).__name__}: its reset "
                "step ends a stand-in episode, which would count in the parkour terrain curriculum; use SAME_STEP"
            )
        if not use_one_hot and not metaworld:
            raise ValueError("use_one_hot=False (Meta-World's 39-d observation) applies to Meta-World envs only")
        self.env = env
        self.autoreset_mode = mode
        self.tensors = tensors
        self.use_one_hot = bool(use_one_hot)
        self.metadata = {"autoreset_mode": mode}
        self.num_envs = env.num_envs
        obs_dim = env.obs_dim if self.use_one_hot else METAWORLD_OBS_DIM
        self.single_observation_space = gym.spaces.Box(-np.inf, np.inf, (obs_dim,), np.float32)
        bound = env.action_bound
        self.single_action_space = gym.spaces.Box(-bound, bound, (env.action_dim,), np.float32)
        self.observation_space = gym.vector.utils.batch_space(self.single_observation_space, self.num_envs)
        self.action_space = gym.vector.utils.batch_space(self.single_action_space, self.num_envs)
        # NEXT_STEP: the envs whose episode ended on the previous step (their next step is a reset step)
        self._autoreset = torch.zeros(self.num_envs, dtype=torch.bool, device=env.device)
        self._episode_start = np.zeros(self.num_envs)  # wall clock of each episode's start, for Meta-World's `t`

    # -- reset and step ----------------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict | None = None):
        """Reset every env (`seed` reseeds the env's RNG and the action space). Partial resets (`reset_mask`) are
        not offered: the env resets ended episodes itself."""
        mask = (options or {}).get("reset_mask")
        if mask is not None and not np.all(np.asarray(mask)):
            raise ValueError("partial resets (options['reset_mask'] not all True) are not offered; the env auto-resets")
        if seed is not None:
            self.env.gen.manual_seed(seed)
            self.action_space.seed(seed)
        obs = self._obs(self.env.reset())
        self._autoreset.zero_()
        self._episode_start[:] = time.perf_counter()
        all_envs = torch.ones(self.num_envs, dtype=torch.bool, device=self.env.device)
        return self._out(obs), self._out(with_masks({"task_id": self.env.env_task_id}, all_envs))

    def step(self, actions):
        """`actions` (num_envs, action_dim): with tensors="numpy" anything numpy reads as numbers (converted to
        float32 on the env's device here, a host-to-device copy on CUDA: the price of numpy in, numpy out); with
        tensors="torch" a float tensor on the env's device (the env's own action rule)."""
        if self.tensors == "numpy":
            actions = torch.as_tensor(np.asarray(actions, dtype=np.float32), device=self.env.device)
        if self.autoreset_mode is AutoresetMode.NEXT_STEP:
            return self._step_next(actions)
        return self._step_same(actions)

    def _step_same(self, actions: torch.Tensor):
        obs, rew, term, trunc, info = self.env.step(actions)
        ep = info["episode"]
        done = ep["done"]
        success = info["success"].double()
        final_info = {  # zeros where the mask is off, as gymnasium's vector envs leave them
            "success": torch.where(done, success, 0.0),
            "episode": {"r": torch.where(done, ep["return"].double(), 0.0), "l": torch.where(done, ep["length"], 0)},
        }
        infos = {
            **with_masks({"success": torch.where(done, 0.0, success)}, ~done),
            **with_masks({"task_id": info["task_id"]}, torch.ones_like(done)),
            **with_masks({"final_obs": self._obs(info["final_obs"]), "final_info": final_info}, done),
            **with_masks({EPISODE_KEY: ep}, done),
        }
        out = self._out_step(self._obs(obs), rew, term, trunc, infos)
        if self.tensors == "numpy":  # Meta-World's episode `t`: seconds since the episode started
            now, ended = time.perf_counter(), out[4]["_final_info"]
            out[4]["final_info"]["episode"]["t"] = np.where(ended, np.round(now - self._episode_start, 6), 0.0)
            out[4]["final_info"]["episode"]["_t"] = ended.copy()
            self._episode_start[ended] = now
        return out

    def _step_next(self, actions: torch.Tensor):
        """NEXT_STEP on top of the env's SAME_STEP auto-reset. The env already reset the envs that ended last step;
        this step would move them, so they are made to end again (their counters set to the episode length) and
        are reset once more inside the step: what the caller sees is a fresh first observation, reward 0, no
        termination or truncation, and the stand-in episode's statistics are dropped. Batched, no host sync. The
        env's own `ep_length` is the lever because the env has no masked reset of its own yet."""
        prev = self._autoreset
        self.env.ep_length.masked_fill_(prev, self.env.episode_length)
        obs, rew, term, trunc, info = self.env.step(actions)
        ep = info["episode"]
        ended = ep["done"] & ~prev
        obs = torch.where(ended[:, None], info["final_obs"], obs)  # the last observation, reset next step
        rew = torch.where(prev, torch.zeros_like(rew), rew)
        term, trunc = term & ~prev, trunc & ~prev
        infos = {
            **with_masks({"success": torch.where(prev, 0.0, info["success"].double())}, ~prev),
            **with_masks({"task_id": info["task_id"]}, torch.ones_like(prev)),
            **with_masks({EPISODE_KEY: {**ep, "done": ended}}, ended),
        }
        self._autoreset = ended
        return self._out_step(self._obs(obs), rew, term, trunc, infos)

    def _obs(self, obs: torch.Tensor) -> torch.Tensor:
        return obs if self.use_one_hot else obs[:, :METAWORLD_OBS_DIM]

    def _out(self, value: Any) -> Any:
        """numpy: host copies; torch: the tensors themselves."""
        return value if self.tensors == "torch" else to_numpy(value)

    def _out_step(self, obs: torch.Tensor, rew: torch.Tensor, term: torch.Tensor, trunc: torch.Tensor, infos: dict):
        """A step's results as `_out` gives them; numpy rewards are float64, as gymnasium's own vector envs'."""
        if self.tensors == "torch":
            return obs, rew, term, trunc, infos
        return to_numpy(obs), to_numpy(rew).astype(np.float64), to_numpy(term), to_numpy(trunc), to_numpy(infos)

    # -- Meta-World's sub-env attributes -----------------------------------------------------------
    @property
    def task_name(self) -> tuple[str, ...]:
        """Per env, what Meta-World's sub-envs call `task_name`: the env class name (`SawyerReachEnvV3`); task names
        for suites that are not Meta-World."""
        names = list(self.env.task_names)
        if is_metaworld(self.env):
            names = metaworld_class_names(names)
        return tuple(name for name, n in zip(names, self.env.task_counts) for _ in range(n))

    def toggle_terminate_on_success(self, on: bool) -> None:
        """End episodes (terminated) at their first success, or not: Meta-World's `AutoTerminateOnSuccessWrapper`
        switch, which `metaworld.evaluation.evaluation` turns on for its episodes and back afterwards."""
        if not is_metaworld(self.env):
            raise AttributeError(f"{type(self.env).__name__} has no terminate_on_success option")
        self.env.terminate_on_success = bool(on)

    def call(self, name: str, *args: Any, **kwargs: Any) -> tuple[Any, ...]:
        """As `SyncVectorEnv.call`: one result per env. Meta-World's sub-env attributes are answered here; any other
        name is read from (or called once on) the wrapped env, and the result repeated per env."""
        if name == "task_name":
            return self.task_name
        if name == "toggle_terminate_on_success":
            target = self.toggle_terminate_on_success
        else:
            try:
                target = getattr(self.env, name)
            except AttributeError:
                raise AttributeError(f"{type(self.env).__name__} has no attribute {name!r}") from None
        value = target(*args, **kwargs) if callable(target) else target
        return tuple(value for _ in range(self.num_envs))

    def get_attr(self, name: str) -> tuple[Any, ...]:
        """As `SyncVectorEnv.get_attr`: the attribute per env."""
        return self.call(name)

    def set_attr(self, name: str, values: Any) -> None:
        """As `SyncVectorEnv.set_attr`, for settings that hold for the whole batch: one value, or one per env that
        are all equal."""
        if isinstance(values, (list, tuple)):
            if len(values) != self.num_envs:
                raise ValueError(f"set_attr needs one value or {self.num_envs} (one per env), got {len(values)}")
            if any(v != values[0] for v in values):
                raise ValueError(f"{name!r} is one setting for the whole batch; give every env the same value")
            values = values[0]
        if name == "terminate_on_success":
            self.toggle_terminate_on_success(values)
        elif not hasattr(self.env, name):
            raise AttributeError(f"{type(self.env).__name__} has no attribute {name!r}")
        else:
            setattr(self.env, name, values)

    def close_extras(self, **kwargs) -> None:
        self.env.close()
