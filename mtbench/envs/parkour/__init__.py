"""Parkour suite: the Unitree Go1 quadruped on MTBench's 20 parkour terrains (plus flat).

`robot.py` holds the Go1 model (`assets/go1.xml`), its joint order, default pose and PD law;
`terrains.py` builds the terrain tiles the robot is attached to.
"""
