"""What each Meta-World scene needs of MuJoCo Warp's fixed contact and constraint buffers (mtbench/sim/capacity.py).

Measured with `python tools/contact_capacity.py --suite metaworld --cpu-steps 150 --warp-steps 50` (per task 12 envs
x 150 policy steps of 5 substeps on MuJoCo C, 6 envs x 50 steps on MuJoCo Warp's CPU device; a third of the envs
each driven by Meta-World's scripted expert with noise 0.1, by uniform random actions, and pressing the hand down
into the table and objects), counted after every substep. Each entry is the peak per world over both engines:
contacts (for Warp also broadphase pairs per world, which share the pool; never the larger here, at most 12.5) and
constraint rows (elliptic cones: 3 or 4 rows per contact, 6 for the mocap weld, plus joint limits). The comment
gives each engine's own peaks (contacts/rows) and the sizes used, nconmax/njmax = 2 x peak rounded up to a multiple
of 8.

Over MT50: 12-56 contacts and 52-232 rows. The most: sweep-into (56/232, on Warp), peg-insert-side (49/202, on C),
box-close, plate-slide-side, hand-insert, stick-pull (37-40 contacts). MuJoCo C usually finds more contacts than
MJWarp; in three scenes Warp found more. The former single size, 64/256 everywhere, left sweep-into and
peg-insert-side under 1.3x headroom while reach-like scenes need 13/59.
"""

from __future__ import annotations

from mtbench.sim.capacity import Capacity

MEASURED: dict[str, Capacity] = {
    "assembly-v3": Capacity(27, 99),  # C 27/99, Warp 17/65 -> 56/200
    "basketball-v3": Capacity(13, 58),  # C 13/58, Warp 7/33 -> 32/120
    "bin-picking-v3": Capacity(24, 103),  # C 24/103, Warp 20/89 -> 48/208
    "box-close-v3": Capacity(40, 167),  # C 40/167, Warp 35/147 -> 80/336
    "button-press-topdown-v3": Capacity(21, 86),  # C 21/86, Warp 8/40 -> 48/176
    "button-press-topdown-wall-v3": Capacity(24, 98),  # C 24/98, Warp 8/40 -> 48/200
    "button-press-v3": Capacity(31, 119),  # C 31/119, Warp 8/40 -> 64/240
    "button-press-wall-v3": Capacity(18, 76),  # C 18/76, Warp 8/40 -> 40/152
    "coffee-button-v3": Capacity(13, 58),  # C 13/58, Warp 12/55 -> 32/120
    "coffee-pull-v3": Capacity(13, 58),  # C 13/58, Warp 9/42 -> 32/120
    "coffee-push-v3": Capacity(13, 58),  # C 13/58, Warp 9/42 -> 32/120
    "dial-turn-v3": Capacity(16, 73),  # C 16/73, Warp 16/73 -> 32/152
    "disassemble-v3": Capacity(20, 79),  # C 20/79, Warp 18/76 -> 40/160
    "door-close-v3": Capacity(16, 73),  # C 16/73, Warp 8/39 -> 32/152
    "door-lock-v3": Capacity(23, 98),  # C 23/98, Warp 17/75 -> 48/200
    "door-unlock-v3": Capacity(23, 98),  # C 23/98, Warp 17/75 -> 48/200
    "door-open-v3": Capacity(16, 71),  # C 16/71, Warp 6/33 -> 32/144
    "drawer-close-v3": Capacity(13, 52),  # C 13/52, Warp 8/40 -> 32/104
    "drawer-open-v3": Capacity(16, 71),  # C 16/71, Warp 9/35 -> 32/144
    "faucet-close-v3": Capacity(16, 73),  # C 16/73, Warp 16/72 -> 32/152
    "faucet-open-v3": Capacity(16, 73),  # C 16/73, Warp 16/72 -> 32/152
    "hammer-v3": Capacity(15, 64),  # C 15/64, Warp 8/38 -> 32/128
    "hand-insert-v3": Capacity(38, 160),  # C 38/160, Warp 26/111 -> 80/320
    "handle-press-side-v3": Capacity(20, 90),  # C 20/90, Warp 20/90 -> 40/184
    "handle-press-v3": Capacity(17, 76),  # C 17/74, Warp 17/76 -> 40/152
    "handle-pull-side-v3": Capacity(18, 79),  # C 18/79, Warp 16/71 -> 40/160
    "handle-pull-v3": Capacity(17, 76),  # C 14/64, Warp 17/76 -> 40/152
    "lever-pull-v3": Capacity(16, 73),  # C 16/73, Warp 16/72 -> 32/152
    "peg-insert-side-v3": Capacity(49, 202),  # C 49/202, Warp 20/84 -> 104/408
    "peg-unplug-side-v3": Capacity(24, 96),  # C 24/96, Warp 16/63 -> 48/192
    "pick-out-of-hole-v3": Capacity(21, 91),  # C 21/91, Warp 17/76 -> 48/184
    "pick-place-v3": Capacity(13, 59),  # C 13/59, Warp 7/34 -> 32/120
    "pick-place-wall-v3": Capacity(17, 75),  # C 17/75, Warp 9/42 -> 40/152
    "plate-slide-back-side-v3": Capacity(22, 82),  # C 22/82, Warp 16/74 -> 48/168
    "plate-slide-back-v3": Capacity(20, 71),  # C 20/71, Warp 8/41 -> 40/144
    "plate-slide-side-v3": Capacity(39, 147),  # C 39/147, Warp 16/74 -> 80/296
    "plate-slide-v3": Capacity(22, 79),  # C 22/79, Warp 16/72 -> 48/160
    "push-back-v3": Capacity(20, 87),  # C 20/87, Warp 10/46 -> 40/176
    "push-v3": Capacity(13, 59),  # C 13/59, Warp 7/34 -> 32/120
    "push-wall-v3": Capacity(17, 75),  # C 17/75, Warp 9/42 -> 40/152
    "reach-v3": Capacity(13, 59),  # C 13/59, Warp 7/34 -> 32/120
    "reach-wall-v3": Capacity(17, 75),  # C 17/75, Warp 8/38 -> 40/152
    "shelf-place-v3": Capacity(25, 108),  # C 25/108, Warp 16/71 -> 56/216
    "soccer-v3": Capacity(23, 97),  # C 23/97, Warp 7/33 -> 48/200
    "stick-pull-v3": Capacity(37, 155),  # C 37/155, Warp 20/89 -> 80/312
    "stick-push-v3": Capacity(26, 111),  # C 26/111, Warp 20/89 -> 56/224
    "sweep-into-v3": Capacity(56, 232),  # C 48/199, Warp 56/232 -> 112/464
    "sweep-v3": Capacity(20, 87),  # C 20/87, Warp 16/70 -> 40/176
    "window-close-v3": Capacity(12, 55),  # C 12/55, Warp 8/39 -> 24/112
    "window-open-v3": Capacity(12, 55),  # C 12/55, Warp 8/39 -> 24/112
}
"""Meta-World name -> peak per world (contacts, constraint rows); sizes are `Capacity.nconmax` / `.njmax`."""
