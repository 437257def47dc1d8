"""Toy sizes of the task-aware networks for the command-line matrix tests of every learner (the sizes of mlp and
multihead differ by learner: each test file adds its own)."""

TASK_AWARE = {
    "care_mh": ["network.units=[16,16]"],
    "moore": ["network.hidden_dim=16", "network.num_layers=2"],
    "paco": ["network.D=16"],
    "soft_modularization": ["network.D=16", "network.num_layers=2", "network.state_units=[16]",
                            "network.task_units=[16]"],
}  # fmt: skip
SCHEMES = ["none", "pcgrad", "cagrad", "famo"]
