"""``tools.bench_service_cost`` runs the real service path and accounts for every frame (tiny sizes: no timing asserted)."""

from __future__ import annotations

from tools.bench_service_cost import STAGES, measure, table


def test_the_harness_publishes_every_frame_and_times_every_stage() -> None:
    d = measure(streams=3, frames=8, repeat=1, seed=0, max_batch=4)
    assert d["frames"] == 24 and d["messages"] == 24 + 6  # frames + a start and an end per stream
    assert d["received_by_drain"] == d["messages"]  # published on loopback and drained by another process
    assert d["batches"] == 8 * 1  # one batch per capture instant (3 windows <= max_batch)
    stages = d["stages_us_per_frame"]
    for stage in (
        "decode+validate",
        "take",
        "window update",
        "normalisation",
        "bone step",
        "encode",
        "publish",
    ):
        assert stages[stage] > 0, stage  # every stage of the current code is found and timed
    assert {s for s, _, _ in STAGES} <= set(stages)
    assert d["stage_calls"]["decode+validate"] == d["messages"]
    assert d["us_per_frame"]["thread_cpu"]["min"] > 0
    assert "decode+validate" in table(d)
