"""The Meta-World task names, MTBench ids and benchmark sets: constants only, importing nothing, so that what needs
only the names (the gymnasium ids registered on `import mtbench`) loads no task code."""

# MTBench's TASK_IDX_TO_NAME order (upstream franka_base.py); id i <-> MTBENCH_NAMES[i]
MTBENCH_NAMES = (
    "assembly", "basketball", "bin_picking", "box_close", "button_press_topdown",
    "button_press_topdown_wall", "button_press", "button_press_wall", "coffee_button", "coffee_pull",
    "coffee_push", "dial_turn", "disassemble", "door_close", "door_lock",
    "door_unlock", "door_open", "drawer_close", "drawer_open", "faucet_close",
    "faucet_open", "hammer", "hand_insert", "handle_press_side", "handle_press",
    "handle_pull_side", "handle_pull", "lever_pull", "peg_insert_side", "peg_unplug_side",
    "pick_out_of_hole", "pick_place", "pick_place_wall", "plate_slide_back_side", "plate_slide_back",
    "plate_slide_side", "plate_slide", "push_back", "push", "push_wall",
    "reach", "reach_wall", "shelf_place", "soccer", "stick_pull",
    "stick_push", "sweep_into_goal", "sweep", "window_close", "window_open",
)  # fmt: skip


def _metaworld_name(mtbench_name: str) -> str:
    return {"sweep_into_goal": "sweep-into-v3"}.get(mtbench_name, mtbench_name.replace("_", "-") + "-v3")


METAWORLD_NAMES = tuple(_metaworld_name(n) for n in MTBENCH_NAMES)
ID_OF = {**{n: i for i, n in enumerate(METAWORLD_NAMES)}, **{n: i for i, n in enumerate(MTBENCH_NAMES)}}

MT10_IDS = (4, 16, 17, 18, 28, 31, 38, 40, 48, 49)
MT25_NAMES = (
    "reach-v3", "push-v3", "pick-place-v3", "door-open-v3", "drawer-open-v3", "drawer-close-v3",
    "button-press-topdown-v3", "peg-insert-side-v3", "window-open-v3", "window-close-v3", "coffee-pull-v3",
    "pick-out-of-hole-v3", "disassemble-v3", "pick-place-wall-v3", "basketball-v3", "stick-pull-v3",
    "button-press-wall-v3", "faucet-open-v3", "door-lock-v3", "lever-pull-v3", "sweep-into-v3",
    "faucet-close-v3", "coffee-button-v3", "button-press-topdown-wall-v3", "dial-turn-v3",
)  # fmt: skip
BENCHMARKS = {
    "mt10": MT10_IDS,
    "mt25": tuple(sorted(ID_OF[n] for n in MT25_NAMES)),
    "mt50": tuple(range(50)),
}
