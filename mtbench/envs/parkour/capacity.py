"""What each parkour terrain needs of MuJoCo Warp's fixed contact and constraint buffers (mtbench/sim/capacity.py).

Measured with `python tools/contact_capacity.py --suite parkour --cpu-steps 300 --warp-steps 40` (per terrain, the
parkour_hard column of ten rows at difficulty 0 to 1, which holds the easy and flat settings' terrain; 20 envs x 300
policy steps of 4 substeps on MuJoCo C, 6 envs x 40 steps on MuJoCo Warp's CPU device; a third of the envs each
standing (zero action), walking-like (joint offsets N(0, 0.3)) and flailing (N(0, 2): the Go1 falls, trunk, thighs
and calves on the ground); domain randomisation on), counted after every substep. Each entry is the peak per world
over both engines (contacts, constraint rows: pyramidal cones, 4 rows per contact, plus joint limits); the comment
gives each engine's own peaks and the sizes used, nconmax/njmax = 2 x peak rounded up to a multiple of 8.

MuJoCo C sets every figure: 50-78 contacts and 201-312 rows per world, as its height-field collider keeps up to
50 contacts per geom pair. MJWarp keeps at most 4 per pair and reached 12-24 contacts and 48-98 rows; its
broadphase pairs every one of the Go1's 18 collision geoms with the height field at every step (18 pairs per
world, which share the contact pool). The spread between terrains is mostly sampling (the robot lying on the
ground), well inside the 2x margin. MJWarp's own default for this model would be 128/1024.
"""

from __future__ import annotations

from mtbench.sim.capacity import Capacity

MEASURED: dict[str, Capacity] = {
    "jump_on_and_off_box": Capacity(78, 312),  # C 78/312, Warp 17/69 -> 160/624
    "forward_ramp_lips": Capacity(66, 265),  # C 66/265, Warp 18/73 -> 136/536
    "sphere_bump_lips": Capacity(63, 254),  # C 63/254, Warp 18/73 -> 128/512
    "forward_ramp_no_lips": Capacity(60, 240),  # C 60/240, Warp 16/65 -> 120/480
    "flush_a_frame": Capacity(75, 300),  # C 75/300, Warp 17/69 -> 152/600
    "sphere_bump": Capacity(50, 201),  # C 50/201, Warp 15/61 -> 104/408
    "box_jump_even": Capacity(59, 236),  # C 59/236, Warp 17/69 -> 120/472
    "box_jump_uneven": Capacity(62, 249),  # C 62/249, Warp 18/73 -> 128/504
    "flat_circle_jump": Capacity(57, 228),  # C 57/228, Warp 16/64 -> 120/456
    "bump_jump": Capacity(65, 262),  # C 65/262, Warp 13/53 -> 136/528
    "sideways_ramp": Capacity(54, 216),  # C 54/216, Warp 20/80 -> 112/432
    "stepping_stones_cylinder": Capacity(58, 232),  # C 58/232, Warp 16/67 -> 120/464
    "stepping_stones_randomly_arranged": Capacity(62, 248),  # C 62/248, Warp 16/66 -> 128/496
    "staircase_walking_full_width": Capacity(63, 254),  # C 63/254, Warp 24/98 -> 128/512
    "staircase_walking": Capacity(64, 258),  # C 64/258, Warp 12/48 -> 128/520
    "staircase_climbing": Capacity(66, 264),  # C 66/264, Warp 14/57 -> 136/528
    "staircase_spiral": Capacity(65, 260),  # C 65/260, Warp 14/57 -> 136/520
    "squeeze": Capacity(65, 261),  # C 65/261, Warp 16/67 -> 136/528
    "agility_poles": Capacity(55, 221),  # C 55/221, Warp 17/69 -> 112/448
    "balance_beam": Capacity(75, 300),  # C 75/300, Warp 14/58 -> 152/600
    "flat": Capacity(69, 276),  # C 69/276, Warp 20/82 -> 144/552
}
"""Terrain name -> peak per world (contacts, constraint rows); sizes are `Capacity.nconmax` / `.njmax`."""
