"""Anonymize a whole dataset: many files, one engine, windows batched across files.

Each input is read (``.skeleton``, ``.npz``, SGN/ST-GCN arrays), its persons' tracks cut into
windows exactly as :func:`~pmr_stream.offline.anonymize_recording` cuts them
(:func:`~pmr_stream.offline.plan_recording`), and the windows of many files go to the engine
together, ``batch_size`` per call, until about ``flush_windows`` are due; each file is then put
back together and written (atomically: a temporary name renamed into place, so an interrupted
run never leaves a half-written file under an output name). The engines used here give every
window the same output whatever else is in its batch (checked for torch and ONNX Runtime on
CPU), so a dataset run writes the same files as single-file runs with the same backend.

``workers`` >= 2 reads and writes in that many processes (started before the engine, so reading
overlaps its start-up) while this process plans windows and runs the engine; 1 does it all here.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import re
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from pmr_stream.dataset.inputs import DatasetInput
from pmr_stream.dataset.manifest import MANIFEST_NAME, FileEntry, read_previous, write_manifest
from pmr_stream.dataset.names import NameOptions, output_names
from pmr_stream.formats.recording import Recording
from pmr_stream.offline import AnonymizeOptions, RecordingPlan, plan_recording

log = logging.getLogger(__name__)

WindowFn = Callable[[npt.NDArray[np.float32]], npt.NDArray[np.float32]]
#: Output format -> the suffix its files get when ``--output-format`` asks for it.
FORMAT_SUFFIX = {"skeleton": ".skeleton", "npz": ".npz", "sgn": ".npy", "stgcn": ".npy", "bvh": ".bvh"}


@dataclass(frozen=True)
class DatasetOptions:
    """A dataset run. ``output``: the folder the input tree is mirrored into; ``input_format`` /
    ``output_format``: ``None`` = by each file (an output keeps its input's suffix);
    ``overwrite``: redo files whose output exists (default: skip them, which is also how an
    interrupted run resumes); ``workers``: processes that read and write (1: this one);
    ``batch_size``: windows per engine call; ``flush_windows``: windows gathered across files
    before they go to the engine (default ``8 * batch_size``); ``progress``: a progress bar on stderr (tqdm, frames, ETA)."""

    output: str
    names: NameOptions
    input_format: str | None = None
    output_format: str | None = None
    overwrite: bool = False
    workers: int = 1
    batch_size: int = 256
    flush_windows: int | None = None
    progress: bool = True

    def __post_init__(self) -> None:
        if self.workers < 1:
            raise ValueError(f"--workers must be >= 1, got {self.workers}")
        if self.batch_size < 1 or (self.flush_windows is not None and self.flush_windows < 1):
            raise ValueError("batch_size and flush_windows must be >= 1")

    @property
    def flush_at(self) -> int:
        """Windows gathered before an engine round: ``flush_windows`` or ``8 * batch_size``."""
        return self.flush_windows if self.flush_windows is not None else 8 * self.batch_size


@dataclass(frozen=True)
class Engine:
    """The network call of a run: ``window_fn`` (windows ``(B, 75, 25, 3)`` -> the same shape), the
    model id the files carry, the window mode and bone step (``options``), and what the manifest
    says of it (backend, privacy level)."""

    window_fn: WindowFn
    model_id: str
    options: AnonymizeOptions
    settings: dict[str, Any] = field(default_factory=dict)


@dataclass
class Job:
    """One file: its input, its output (relative, absolute) and the output's format (None: by suffix)."""

    input: DatasetInput
    output: str
    path: str
    fmt: str | None
    hint: int | None = None  # frames, where cheap to know before reading (a .skeleton's first line)


@dataclass
class DatasetReport:
    """What a run did: the manifest's entries (in input order), console lines of the failures,
    the frames written and the seconds it took (start-up included when ``started`` was given)."""

    entries: list[FileEntry]
    failures: list[str]
    frames: int
    seconds: float
    manifest: str

    @property
    def failed(self) -> int:
        return sum(e.status == "failed" for e in self.entries)


def plan_jobs(inputs: list[DatasetInput], opts: DatasetOptions) -> list[Job]:
    """Output names for ``inputs`` (checked distinct, see :func:`~pmr_stream.dataset.names.output_names`)."""
    suffixes = [
        FORMAT_SUFFIX[opts.output_format] if opts.output_format else Path(d.rel).suffix for d in inputs
    ]
    names = output_names([(d.rel, s) for d, s in zip(inputs, suffixes, strict=True)], opts.names)
    jobs = []
    for d, name in zip(inputs, names, strict=True):
        path = os.path.join(opts.output, *name.split("/"))
        if os.path.realpath(path) == os.path.realpath(d.path):
            raise ValueError(f"output {path}: is the input file {d.path}; write into another folder")
        fmt = opts.output_format
        if fmt is None and name.lower().endswith(".npy"):
            fmt = opts.input_format  # a new .npy: the input's array kind (found when it is read)
        jobs.append(Job(d, name, path, fmt, _frame_hint(d.path)))
    return jobs


def _frame_hint(path: str) -> int | None:
    if not path.lower().endswith(".skeleton"):
        return None
    with contextlib.suppress(OSError, ValueError, UnicodeDecodeError):
        with open(path, "rb") as fh:
            return max(0, int(fh.readline(32).decode("ascii").strip().lstrip("\ufeff")))
    return None


_TMP_RE = re.compile(r"^\.(?P<name>.+)\.(?P<pid>\d+)\.[0-9a-f]+\.tmp$")


def remove_stale_temporaries(jobs: list[Job], output: str) -> int:
    """Remove the temporary files an interrupted run left beside its outputs and its manifest in
    ``output`` (``.NAME.PID.HEX.tmp``, from :func:`~pmr_stream.formats.files.atomic_write`, whose
    process is gone); returns how many."""
    names: dict[str, set[str]] = {os.path.normpath(output): set()}
    for j in jobs:
        names.setdefault(os.path.normpath(os.path.dirname(j.path)), set()).add(os.path.basename(j.path))
    removed = 0
    for folder, ours in names.items():
        with contextlib.suppress(OSError):
            for entry in os.scandir(folder):
                m = _TMP_RE.match(entry.name)
                ours_here = m is not None and (
                    m["name"] in ours or (m["name"] == MANIFEST_NAME and folder == os.path.normpath(output))
                )
                if m and ours_here and not _alive(int(m["pid"])):
                    with contextlib.suppress(OSError):
                        os.unlink(entry.path)
                        removed += 1
    return removed


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return False  # our own earlier run cannot be writing now
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# ----------------------------------------------------------------------------- in the workers


def load_file(path: str, fmt: str | None) -> tuple[Recording | None, str | None, str | None]:
    """``(recording, its format, None)`` or ``(None, None, error)``: one line, never a traceback."""
    from pmr_stream.formats.io import guess_format, load_recording

    try:
        kind = fmt or guess_format(path)
        return load_recording(path, kind), kind, None
    except Exception as exc:  # noqa: BLE001 - any bad file is one failure of the run, not its end
        return None, None, _one_line(exc)


def write_file(rec: Recording, path: str, fmt: str | None, overwrite: bool) -> tuple[int, int, str | None]:
    """Write ``rec`` (atomically): ``(frames, persons, None)`` or ``(0, 0, error)``."""
    from pmr_stream.formats.io import save_recording

    try:
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        written = save_recording(rec, path, fmt, overwrite=overwrite)
        return written.frames, written.persons, None
    except Exception as exc:  # noqa: BLE001 - one failure of the run, not its end
        return 0, 0, _one_line(exc)


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if isinstance(exc, (ValueError, OSError)) else f"{type(exc).__name__}: {text}"


# ----------------------------------------------------------------------------- the run


class _Run:
    """The state of one run: entries, progress, the manifest, the pending engine work."""

    def __init__(self, jobs: list[Job], opts: DatasetOptions, settings: dict[str, Any], pool: Any) -> None:
        self.jobs, self.opts, self.settings, self.pool = jobs, opts, settings, pool
        self.manifest = os.path.join(opts.output, MANIFEST_NAME)
        self.previous = read_previous(self.manifest)
        self.entries: list[FileEntry | None] = [None] * len(jobs)
        self.failures: list[str] = []
        self.frames = 0
        self.last_manifest = time.monotonic()
        self.pending: list[tuple[int, RecordingPlan, str | None]] = []  # (job, plan, output format)
        self.pending_windows = 0
        self.writes: deque[tuple[int, Any]] = deque()
        self.bar = _bar(opts.progress, sum(j.hint or 0 for j in jobs))
        self.anonymize = AnonymizeOptions()  # set from the engine once it is made

    # -- bookkeeping
    def record(self, i: int, status: str, frames: int | None, persons: int | None, error: str | None) -> None:
        job = self.jobs[i]
        keep = self.opts.names.policy == "keep"
        if error is not None:
            self.failures.append(f"FAILED {job.input.path}: {error}")
            if self.bar is not None:
                self.bar.write(self.failures[-1])
            else:
                log.info("%s", self.failures[-1])
            error = error if keep else _scrub(error, job)
        self.entries[i] = FileEntry(
            job.output, status, frames, persons, error, job.input.path if keep else None
        )
        if status == "done":
            self.frames += frames or 0
        if self.bar is not None:
            got = frames if frames is not None else job.hint or 0
            if got != (job.hint or 0):
                self.bar.total = (self.bar.total or 0) + got - (job.hint or 0)
            files = f"{sum(e is not None for e in self.entries)}/{len(self.jobs)} files"
            self.bar.set_postfix_str(files + (f", {len(self.failures)} failed" if self.failures else ""),
                                     refresh=False)  # fmt: skip
            self.bar.update(got)
        if time.monotonic() - self.last_manifest > 5.0:
            self.write_manifest()

    def write_manifest(self) -> None:
        done = [e for e in self.entries if e is not None]
        with contextlib.suppress(ValueError):
            write_manifest(self.manifest, self.settings, done)
        self.last_manifest = time.monotonic()

    # -- the engine's part
    def add(self, i: int, rec: Recording, kind: str | None) -> None:
        job = self.jobs[i]
        fmt = job.fmt if job.fmt is not None or kind not in ("sgn", "stgcn") else kind  # arrays stay arrays
        try:
            from pmr_stream.formats.io import check_fits

            check_fits(rec, job.path, fmt)
            plan = plan_recording(rec, self.anonymize)
        except ValueError as exc:
            self.record(i, "failed", rec.num_frames, None, _one_line(exc))
            return
        self.pending.append((i, plan, fmt))
        self.pending_windows += len(plan.windows)

    def flush(self, window_fn: WindowFn, model_id: str) -> None:
        if not self.pending:
            return
        pending, self.pending, self.pending_windows = self.pending, [], 0
        windows = np.concatenate([p.windows for _, p, _ in pending])
        b = self.opts.batch_size
        try:
            res = np.concatenate([np.asarray(window_fn(windows[s : s + b]), np.float32)
                                  for s in range(0, len(windows), b)]) if len(windows) else windows  # fmt: skip
        except Exception as exc:  # noqa: BLE001 - the batch's files fail, the run goes on
            for i, plan, _ in pending:
                self.record(i, "failed", plan.source.num_frames, None, f"engine: {_one_line(exc)}")
            return
        start = 0
        for i, plan, fmt in pending:
            out = plan.finish(res[start : start + len(plan.windows)], model_id)
            start += len(plan.windows)
            job = self.jobs[i]
            if self.pool is None:
                self.wrote(i, write_file(out, job.path, fmt, self.opts.overwrite))
            else:
                self.writes.append(
                    (i, self.pool.apply_async(write_file, (out, job.path, fmt, self.opts.overwrite)))
                )
        self.collect_writes(block=False)

    def wrote(self, i: int, result: tuple[int, int, str | None]) -> None:
        frames, persons, error = result
        if error is None:
            self.record(i, "done", frames, persons, None)
        else:
            self.record(i, "failed", None, None, error)

    def collect_writes(self, block: bool) -> None:
        while self.writes and (block or self.writes[0][1].ready()):
            i, res = self.writes.popleft()
            self.wrote(i, res.get())


def _bar(enabled: bool, total: int) -> Any:
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(total=total, unit="frame", unit_scale=True, dynamic_ncols=True, smoothing=0.1)


def _scrub(error: str, job: Job) -> str:
    """The error without the input's path or name (the manifest carries output names only)."""
    p = Path(job.input.path)
    for s in sorted({job.input.path, str(p.resolve()), job.input.rel, p.name, p.stem}, key=len, reverse=True):
        if s:
            error = error.replace(s, "<input>")
    return f"input of {job.output}: {error}"


def _loads(
    run: _Run, todo: list[int]
) -> Iterator[tuple[int, tuple[Recording | None, str | None, str | None]]]:
    """Each job's loaded recording, in order: read here (lazily), or by the pool a few files ahead
    (the first ones asked for at once, so reading overlaps the engine's start-up)."""
    fmt = run.opts.input_format
    if run.pool is None:
        return ((i, load_file(run.jobs[i].input.path, fmt)) for i in todo)
    pool = run.pool
    queue: deque[tuple[int, Any]] = deque()
    it = iter(todo)

    def submit() -> None:
        nxt = next(it, None)
        if nxt is not None:
            queue.append((nxt, pool.apply_async(load_file, (run.jobs[nxt].input.path, fmt))))

    for _ in range(4 * run.opts.workers):
        submit()

    def gen() -> Iterator[tuple[int, tuple[Recording | None, str | None, str | None]]]:
        while queue:
            i, res = queue.popleft()
            submit()
            yield i, res.get()

    return gen()


def run_dataset(
    jobs: list[Job],
    opts: DatasetOptions,
    engine: Callable[[], Engine],
    settings: dict[str, Any] | None = None,
) -> DatasetReport:
    """Anonymize ``jobs`` (:func:`plan_jobs`) into ``opts.output``.

    Args:
        engine: makes the network call (:class:`Engine`); called after the worker processes have
            started (they read while it loads).
        settings: more of the run's settings for the manifest (names policy, ...).

    Returns:
        the report; a failed file is an entry with its error, the others are done regardless.
    """
    t0 = time.perf_counter()
    os.makedirs(opts.output, exist_ok=True)
    removed = remove_stale_temporaries(jobs, opts.output)
    if removed:
        log.info("removed %d temporary file(s) an interrupted run left", removed)
    ctx = multiprocessing.get_context("fork") if opts.workers > 1 else None
    pool = ctx.Pool(opts.workers) if ctx is not None else None
    run = _Run(jobs, opts, dict(settings or {}), pool)
    try:
        todo = []
        for i, job in enumerate(jobs):
            if not opts.overwrite and os.path.exists(job.path):
                prev = run.previous.get(job.output)
                run.record(i, "skipped", prev.frames if prev else None, prev.persons if prev else None, None)
            else:
                todo.append(i)
        loads = _loads(run, todo)  # the pool starts reading before the engine is made
        made = engine()
        window_fn, model_id = made.window_fn, made.model_id
        run.anonymize = made.options
        run.settings.update(made.settings)
        for i, (rec, kind, error) in loads:
            if rec is None:
                run.record(i, "failed", None, None, error)
                continue
            run.add(i, rec, kind)
            if run.pending_windows >= opts.flush_at:
                run.flush(window_fn, model_id)
        run.flush(window_fn, model_id)
        run.collect_writes(block=True)
    finally:
        if pool is not None:
            pool.terminate()
            pool.join()
        if run.bar is not None:
            run.bar.close()
        run.write_manifest()
    entries = [e for e in run.entries if e is not None]
    return DatasetReport(entries, run.failures, run.frames, time.perf_counter() - t0, run.manifest)


__all__ = ["DatasetOptions", "Engine", "DatasetReport", "Job", "plan_jobs", "run_dataset", "load_file", "write_file",
           "remove_stale_temporaries", "FORMAT_SUFFIX"]  # fmt: skip
