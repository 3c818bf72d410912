#!/usr/bin/env python3
"""The M/M/1 model of scenarios/mm1.yaml written the idiomatic SimPy way, for the speed comparison.

Poisson arrivals at 800/s into one server (a simpy.Resource of capacity 1) with exponential service of mean 1 ms.
Prints one JSON line: completed requests, wall seconds, completed requests per wall second, and the mean response
time (a sanity check: 5 ms in theory).
"""
import json
import random
import sys
import time

import simpy


def main() -> None:
    simulated_seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 100.0
    seed = int(sys.argv[2]) if len(sys.argv) > 2 else 1
    rng = random.Random(seed)
    lam, mean_service = 800.0, 0.001
    env = simpy.Environment()
    server = simpy.Resource(env, capacity=1)
    stats = {"done": 0, "total": 0.0}

    def request(env):
        arrived = env.now
        with server.request() as slot:
            yield slot
            yield env.timeout(rng.expovariate(1.0 / mean_service))
        stats["done"] += 1
        stats["total"] += env.now - arrived

    def source(env):
        while True:
            yield env.timeout(rng.expovariate(lam))
            env.process(request(env))

    env.process(source(env))
    start = time.perf_counter()
    env.run(until=simulated_seconds)
    wall = time.perf_counter() - start
    print(json.dumps({
        "completed": stats["done"],
        "wall_seconds": wall,
        "completed_per_second": stats["done"] / wall,
        "mean_ms": 1000.0 * stats["total"] / max(stats["done"], 1),
    }))


if __name__ == "__main__":
    main()
