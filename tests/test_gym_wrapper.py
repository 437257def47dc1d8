import numpy as np

import mtbench
from mtbench.envs.gym_wrapper import GymVectorEnv


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
