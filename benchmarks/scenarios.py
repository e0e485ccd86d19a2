"""`Scenario`: implementations of one benchmark timed in turns, reported as ratios."""

from __future__ import annotations

import asyncio
import gc
import statistics
import time
from collections.abc import Awaitable, Callable
from typing import Any


class Scenario:
    """Implementations of one scenario, timed in turns; reports medians per operation.

    Wall time is what users see; the client's CPU time (``time.process_time``) is reported
    too, because on a shared, loaded machine it is the steadier measure of the library's
    own overhead (the database server and other processes don't count in it).
    """

    def __init__(self, runner: asyncio.Runner, operations: int) -> None:
        self.runner = runner
        self.operations = operations
        self.implementations: dict[str, Callable[[], Awaitable[None]]] = {}
        self.after_each: Callable[[], Awaitable[None]] | None = None
        self.samples: dict[str, list[float]] = {}
        self.cpu_samples: dict[str, list[float]] = {}

    def add(self, name: str, batch: Callable[[], Awaitable[None]]) -> None:
        self.implementations[name] = batch
        self.reset()

    def reset(self) -> None:
        self.samples = {name: [] for name in self.implementations}
        self.cpu_samples = {name: [] for name in self.implementations}

    def turn(self) -> None:
        for name, batch in self.implementations.items():
            gc.collect()  # nobody pays for the garbage of the implementation before it
            cpu_started = time.process_time()
            started = time.perf_counter()
            self.runner.run(batch())
            self.samples[name].append((time.perf_counter() - started) / self.operations)
            self.cpu_samples[name].append((time.process_time() - cpu_started) / self.operations)
            if self.after_each is not None:
                self.runner.run(self.after_each())

    def report(self, benchmark: Any, title: str, baseline: str = "asyncpg") -> dict[str, float]:
        medians = {name: statistics.median(values) for name, values in self.samples.items()}
        cpu = {name: statistics.median(values) for name, values in self.cpu_samples.items()}
        ratios = {name: medians[name] / medians[baseline] for name in medians}
        for name in medians:
            benchmark.extra_info[f"{name}: median µs"] = round(medians[name] * 1e6, 1)
            benchmark.extra_info[f"{name}: ratio"] = round(ratios[name], 2)
            benchmark.extra_info[f"{name}: client CPU µs"] = round(cpu[name] * 1e6, 1)
        turns = len(next(iter(self.samples.values())))
        lines = [f"\n{title} (median per operation over {turns} turns)"]
        lines.append(f"  {'':<34} {'wall µs':>11} {'ratio':>6}  {'client CPU µs':>13}")
        for name in medians:
            wall_us, cpu_us = medians[name] * 1e6, cpu[name] * 1e6
            lines.append(f"  {name:<34} {wall_us:11.1f} {ratios[name]:5.2f}×  {cpu_us:13.1f}")
        print("\n".join(lines))
        return ratios
