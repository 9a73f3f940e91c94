"""``pmr anonymizer --workers N``: streams split by a stable hash, one worker each, a killed
worker restarted and its streams resumed. Real worker processes, real ZeroMQ proxies on
loopback, a real producer of synthetic streams."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections import Counter, defaultdict
from pathlib import Path

import pytest

from pmr_stream.anonymizer.shards import ShardPlan, ShardSupervisor
from pmr_stream.capture.producer import Producer, ProducerOptions
from pmr_stream.capture.synthetic import SyntheticSource, stream_ids
from pmr_stream.wire.options import SocketOptions
from pmr_stream.wire.schema import FrameMessage, topic_for
from pmr_stream.wire.shard import ShardFilter, parse_shard, shard_of
from pmr_stream.wire.sockets import Publisher
from pmr_stream.wire.subscriber import Subscriber, SubscriberOptions
from tests.waiting import wait_until

ROOT = Path(__file__).resolve().parents[2]


def test_the_shard_of_a_stream_is_stable_and_spreads_streams() -> None:
    topics = [topic_for(f"cam-{k}") for k in range(1000)]
    first = [shard_of(t, 4) for t in topics]
    assert first == [shard_of(t.encode(), 4) for t in topics]  # str and bytes agree
    # the same in another process (Python's own hash() would differ there)
    code = "from pmr_stream.wire.shard import shard_of; print(shard_of('raw/cam-7', 4))"
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert int(other.stdout) == first[7]
    counts = Counter(first)
    assert set(counts) == {0, 1, 2, 3} and min(counts.values()) > 200  # 250 each expected


def test_a_shard_spec_out_of_range_is_refused_naming_it() -> None:
    assert parse_shard("1/3") == (1, 3)
    for bad in ("3/3", "-1/2", "1", "a/b", "0/0"):
        with pytest.raises(ValueError, match=f"shard '{bad}'"):
            parse_shard(bad)


def test_another_shards_frames_are_skipped_unread() -> None:
    mine = next(f"s{k}" for k in range(100) if shard_of(topic_for(f"s{k}"), 2) == 0)
    other = next(f"s{k}" for k in range(100) if shard_of(topic_for(f"s{k}"), 2) == 1)
    f = ShardFilter(0, 2)
    assert f.accepts(topic_for(mine).encode() + b"\0garbage")
    assert not f.accepts(topic_for(other).encode() + b"\0garbage")  # never decoded: no error
    assert f.accepts(b"no topic at all") and f.skipped == 1  # the subscriber drops it, saying why


def test_workers_split_the_streams_and_a_killed_worker_comes_back(tmp_path: Path) -> None:
    streams = stream_ids(6)
    expected = Counter(shard_of(topic_for(s), 2) for s in streams)
    assert set(expected) == {0, 1}, "the stream names must land on both shards"
    key = tmp_path / "stream_key"
    stop_producer = threading.Event()
    with Publisher("tcp://127.0.0.1:*") as raw:
        plan = ShardPlan(
            workers=2, raw=[raw.endpoint], anon="tcp://127.0.0.1:*", raw_options=SocketOptions(),
            anon_options=SocketOptions(), report_s=0.5, stats_json=tmp_path / "stats.json",
            worker_argv=["--backend", "onnxruntime", "--device", "cpu", "--stream-key", str(key)],
        )  # fmt: skip
        lines: list[str] = []
        sup = ShardSupervisor(plan, out=lines.append)
        try:
            ep = sup.start()
            wait_until(sup.all_ready, timeout_s=120, interval_s=0.1, what="both workers to serve")
            with Subscriber([ep], ["anon/"], options=SubscriberOptions()) as tap:
                producer = Producer(SyntheticSource(6, seed=3), raw,
                                    ProducerOptions(speed=1.0, duration_s=60, wait_subscribers=1, report_s=0))  # fmt: skip
                th = threading.Thread(target=producer.run, args=(stop_producer,), daemon=True)
                th.start()
                seen: dict[str, list[int]] = defaultdict(list)  # anon stream -> frames received

                def take() -> None:
                    for r in tap.drain():
                        if isinstance(r.message, FrameMessage):
                            seen[r.message.stream].append(r.message.frame)

                def all_streams_flow() -> bool:
                    take()
                    return len(seen) == 6 and all(len(v) >= 15 for v in seen.values())

                wait_until(all_streams_flow, timeout_s=60, interval_s=0.05, what="frames of all 6 streams")
                per = sup.totals()["per_worker"]
                wait_until(lambda: sup.totals()["per_worker"][0].get("streams_seen") == expected[0]
                           and sup.totals()["per_worker"][1].get("streams_seen") == expected[1],
                           timeout_s=10, interval_s=0.1, what="each worker to report its streams")  # fmt: skip
                # every frame once: a stream served by two workers would publish it twice
                for stream, frames in seen.items():
                    assert len(frames) == len(set(frames)), f"{stream} published twice"
                # worker 0 dies; its streams stop, the others go on, then it is back and they resume
                sup.kill_worker(0)
                counts_at_kill = {s: len(v) for s, v in seen.items()}
                wait_until(lambda: sup.poll() and sup.workers[0].restarts == 1 and sup.workers[0].ready,
                           timeout_s=120, interval_s=0.1, what="worker 0 to be started again")  # fmt: skip

                def all_resumed() -> bool:
                    sup.poll()
                    take()
                    return all(len(seen[s]) >= counts_at_kill[s] + 30 for s in seen)

                wait_until(
                    all_resumed, timeout_s=60, interval_s=0.05, what="every stream to flow after the restart"
                )
                assert len(seen) == 6  # the same pseudonyms: the workers share the key
                for stream, frames in seen.items():
                    assert len(frames) == len(set(frames)), f"{stream} published twice"
                stop_producer.set()
                th.join(30)
        finally:
            stop_producer.set()
            final = sup.close()
    assert per[0]["shard"] == "0/2" and per[1]["shard"] == "1/2"
    assert per[0]["shard_skipped"] > 0 and per[1]["shard_skipped"] > 0  # each saw the other's frames
    assert final["restarts"] == 1 and final["workers"] == 2
    assert any(line.startswith("stats ") and '"worker": 1' in line for line in lines)
    assert (tmp_path / "stats.json").is_file()


def test_pmr_stream_with_two_workers_publishes_every_frame_once(tmp_path: Path) -> None:
    """The whole demo (``pmr stream``, so ``pmr anonymizer --workers 2 --until-end`` as a process):
    every frame of 4 streams anonymized once, the run ends by itself."""
    import json
    import os

    work = tmp_path / "w"
    p = subprocess.run(
        [sys.executable, "-m", "pmr_stream.cli", "stream", "--source", "synthetic:4", "--max-frames", "240",
         "--no-video", "--workdir", str(work), "--backend", "onnxruntime", "--device", "cpu", "--workers", "2",
         "--status", "0"],
        capture_output=True, text=True, timeout=300, env=dict(os.environ, PYTHONPATH=str(ROOT)), cwd=tmp_path,
    )  # fmt: skip
    assert p.returncode == 0, p.stdout + p.stderr
    svc = json.loads((work / "service.json").read_text())
    assert svc["workers"] == 2 and svc["restarts"] == 0
    assert svc["published_frames"] == svc["frames_in"] == 240 and not svc["failed"]
    per = svc["per_worker"]
    seen = [d["streams_seen"] for d in per.values()]
    assert sum(seen) == 4 and min(seen) >= 1  # each stream served by one worker, both serve
    lat = json.loads((work / "latency.json").read_text())
    assert lat["frames"] == 240
    assert "2 workers" in (work / "anonymizer.log").read_text()
