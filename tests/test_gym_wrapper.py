"""The gymnasium face: numpy in/out, both autoreset modes, Meta-World's info layout and sub-env attributes, and
gymnasium's own vector wrappers on top (issue #20)."""

import warnings

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.vector import AutoresetMode
from gymnasium.wrappers import vector as vw

import mtbench
from mtbench.envs.gym_wrapper import GymVectorEnv
from mtbench.envs.metaworld.experts import ScriptedExperts

MODES = (AutoresetMode.SAME_STEP, AutoresetMode.NEXT_STEP)


def test_gymnasium_vector_api():
    venv = GymVectorEnv(mtbench.make(["reach", "push"], num_envs=4, device="cpu", episode_length=3))
    obs, info = venv.reset(seed=1)
    assert obs.shape == (4, 41) and obs.dtype == np.float32 and venv.observation_space.contains(obs)
    assert info["task_id"].tolist() == [40, 40, 38, 38]
    for _ in range(3):
        obs, rew, term, trunc, infos = venv.step(venv.action_space.sample())
    assert isinstance(rew, np.ndarray) and rew.shape == (4,) and trunc.all()
    assert infos["_final_obs"].all() and infos["final_obs"].shape == (4, 41)
    assert np.allclose(obs[:, :18], obs[:, 18:36])  # new episodes started in the same step


def _desynchronised(mode: AutoresetMode):
    """reach + push under Meta-World's experts with terminate-on-success: episodes end at different steps, some
    solved (terminated), some not (truncated at 40 steps)."""
    venv = gym.make_vec(
        "MTBench/custom-mt-envs", envs_list=["reach-v3", "push-v3"], num_envs=6, device="cpu", seed=3,
        episode_length=40, terminate_on_success=True, autoreset_mode=mode,
    )  # fmt: skip
    core = venv.unwrapped.env
    experts = ScriptedExperts(core.task_names, core.task_counts)
    return venv, lambda: experts(core.metaworld_obs).numpy() * 1.5  # beyond the bounds: ClipAction has work to do


@pytest.mark.parametrize("mode", MODES, ids=lambda m: m.value)
def test_gymnasium_wrappers_record_our_episode_statistics(mode):
    """RecordEpisodeStatistics, ClipAction, NormalizeReward (both modes) and NormalizeObservation (NEXT_STEP, the
    only mode it takes) stack on our env; the returns and lengths gymnasium records are our own, episode by episode."""
    venv, act = _desynchronised(mode)
    env = stats = vw.RecordEpisodeStatistics(venv)
    env = vw.ClipAction(env)
    if mode is AutoresetMode.NEXT_STEP:
        env = vw.NormalizeObservation(env)
    else:
        with pytest.raises(ValueError, match="NEXT_STEP"):
            vw.NormalizeObservation(venv)
    env = vw.NormalizeReward(env)
    env.reset(seed=3)
    ends, steps_with_ends, terminated = 0, 0, 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # metaworld.policies warns about its own gains
        for _ in range(130):
            _, rew, term, trunc, info = env.step(act())
            assert rew.dtype == np.float64 and np.isfinite(rew).all()
            done = term | trunc
            assert "_episode" in info or not done.any()
            if not done.any():
                continue
            ours = info["mtbench_episode"]
            assert np.array_equal(info["_episode"], done) and np.array_equal(info["_mtbench_episode"], done)
            np.testing.assert_allclose(info["episode"]["r"][done], ours["return"][done], rtol=1e-5)
            assert np.array_equal(info["episode"]["l"][done], ours["length"][done])
            ends, steps_with_ends, terminated = ends + done.sum(), steps_with_ends + 1, terminated + term.sum()
    assert ends >= 12 and steps_with_ends >= 6 and 0 < terminated < ends  # several, desynchronised, both kinds
    assert len(stats.return_queue) == ends


def test_same_step_info_is_metaworlds_layout():
    """SAME_STEP, as Meta-World's vector envs: `final_obs`, `final_info` (`success`, `episode` r/l/t), every key
    masked; this step's `success` only for envs that did not end; our own statistics under `mtbench_episode`."""
    venv, act = _desynchronised(AutoresetMode.SAME_STEP)
    venv.reset()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        for _ in range(40):
            obs, _, term, trunc, info = venv.step(act())
    done = term | trunc
    assert done.any()
    for key in ("success", "task_id", "final_obs", "final_info", "mtbench_episode"):
        assert info[f"_{key}"].shape == (6,) and info[f"_{key}"].dtype == np.bool_
    assert np.array_equal(info["_success"], ~done) and np.array_equal(info["_final_info"], done)
    fin = info["final_info"]
    assert fin["success"].dtype == np.float64 and np.array_equal(fin["_success"], done)
    assert set(fin["episode"]) == {"r", "l", "t", "_r", "_l", "_t"} and np.array_equal(fin["_episode"], done)
    assert np.array_equal(fin["success"][term].astype(bool), np.ones(term.sum(), bool))  # terminated = solved
    fin_obs = info["final_obs"][done]
    assert np.allclose(obs[done][:, :18], obs[done][:, 18:36])  # new episodes start in the same step
    assert not np.allclose(fin_obs[:, :18], fin_obs[:, 18:36])  # and the ended ones' last observations are kept
    assert "episode" not in info  # left to gymnasium's RecordEpisodeStatistics


def test_next_step_reset_step_ignores_the_action():
    """NEXT_STEP: the step that ends an episode returns its last observation; the next one returns the new
    episode's first observation with reward 0 and no termination, whatever the action; episode lengths count
    the new episode's own steps only."""
    runs = []
    for reset_action in (0.0, 1.0):
        venv = gym.make_vec("MTBench/reach-v3", num_envs=2, device="cpu", episode_length=3, autoreset_mode="NextStep")
        assert venv.metadata["autoreset_mode"] is AutoresetMode.NEXT_STEP
        venv.reset(seed=0)
        move = np.full((2, 4), 0.5, np.float32)
        out = [venv.step(move) for _ in range(3)]
        last_obs, _, _, trunc, info = out[-1]
        assert trunc.all() and info["_mtbench_episode"].all() and (info["mtbench_episode"]["length"] == 3).all()
        assert not np.allclose(last_obs[:, :18], last_obs[:, 18:36])  # a last observation, not a first one
        obs, rew, term, trunc, info = venv.step(np.full((2, 4), reset_action, np.float32))
        assert (rew == 0).all() and not term.any() and not trunc.any() and not info["_success"].any()
        assert np.allclose(obs[:, :18], obs[:, 18:36])  # a first observation
        assert not info["_mtbench_episode"].any()
        later = [venv.step(move) for _ in range(3)]
        assert later[-1][3].all() and (later[-1][4]["mtbench_episode"]["length"] == 3).all()
        runs.append(np.stack([o[0] for o in later]))
    assert np.array_equal(runs[0], runs[1])  # the reset step's action changed nothing


def test_torch_in_torch_out_and_metaworld_observation():
    venv = gym.make_vec("MTBench/reach-v3", num_envs=2, device="cpu", episode_length=2, tensors="torch")
    obs, info = venv.reset(seed=0)
    assert isinstance(obs, torch.Tensor) and obs.shape == (2, 40) and isinstance(info["task_id"], torch.Tensor)
    for _ in range(2):
        obs, rew, term, trunc, info = venv.step(torch.zeros(2, 4))
    assert all(isinstance(x, torch.Tensor) for x in (obs, rew, term, trunc, info["final_obs"], info["_final_info"]))
    assert trunc.all() and info["final_info"]["episode"]["l"].tolist() == [2, 2]
    with pytest.raises(TypeError, match="torch.Tensor"):
        venv.step(np.zeros((2, 4), np.float32))  # the env's own action rule
    venv39 = gym.make_vec("MTBench/reach-v3", num_envs=2, device="cpu", use_one_hot=False)
    assert venv39.single_observation_space.shape == (39,) and venv39.reset()[0].shape == (2, 39)
    assert venv39.step(np.zeros((2, 4)))[4]["final_obs"].shape == (2, 39)


def test_metaworld_sub_env_attributes():
    venv = gym.make_vec("MTBench/custom-mt-envs", envs_list=["reach-v3", "door-open-v3"], num_envs=3, device="cpu")
    assert venv.get_attr("task_name") == ("SawyerReachEnvV3", "SawyerReachEnvV3", "SawyerDoorEnvV3")
    assert venv.get_attr("terminate_on_success") == (False,) * 3
    venv.call("toggle_terminate_on_success", True)
    assert venv.unwrapped.env.terminate_on_success is True and venv.get_attr("terminate_on_success") == (True,) * 3
    venv.set_attr("terminate_on_success", [False] * 3)
    assert venv.unwrapped.env.terminate_on_success is False
    assert venv.get_attr("episode_length") == (150,) * 3
    with pytest.raises(ValueError, match="same value"):
        venv.set_attr("terminate_on_success", [True, False, True])
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        venv.get_attr("nope")
