"""``pmr evaluate`` and ``pmr train-evaluators``: the command-line side of :mod:`training.evaluate`."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any, Final

import numpy as np
import torch

from pmr_stream.skeleton import median_bone_lengths
from training.evaluate import (
    POLICIES,
    Method,
    evaluate,
    markdown_table,
    network_fn,
    stream_outputs,
    with_dummy_bones,
    write_outputs,
)
from training.evaluators import TASKS, EvaluatorSpec, centre_windows, load_or_train
from training.fk_baseline import fk_anonymize

log = logging.getLogger(__name__)

#: The DMR baseline trained on the stand-in dataset (see training/assets/README.md).
DEFAULT_DMR: Final[Path] = Path(__file__).resolve().parent / "assets" / "dmr_standin.pt"


def _spec(args: Any) -> EvaluatorSpec:
    spec = EvaluatorSpec.paper() if args.sgn_size == "paper" else EvaluatorSpec()
    if args.evaluator_epochs is not None:
        from dataclasses import replace

        spec = replace(spec, epochs=args.evaluator_epochs)
    return spec


def _load(args: Any, split: str) -> Any:
    from training.data import DataConfig, load_clips
    from training.train import ensure_standin

    path = Path(args.data) if args.data else (Path("data/standin.npz") if args.dataset == "standin" else None)
    if path is None:
        raise SystemExit("pmr evaluate: --data DIR (the NTU-60 .skeleton files) is required for --dataset ntu60")
    if args.dataset == "standin" and path.suffix == ".npz":
        path = ensure_standin(path)
    cfg = DataConfig(dataset=args.dataset, path=path, split=split, genders=args.genders, allow_unknown_gender=args.genders is None,
                     cache=args.cache)  # fmt: skip
    return load_clips(cfg)


def _evaluators(args: Any, train: Any) -> Any:
    cache = Path(args.evaluators) if args.evaluators else Path("runs/evaluators") / args.dataset
    return load_or_train(train, cache, _spec(args), tasks=TASKS, retrain=args.retrain_evaluators, progress=not args.quiet,
                         device=args.device)  # fmt: skip


def train_evaluators_command(args: Any) -> int:
    """``pmr train-evaluators``: train (or refresh) the cached evaluators and print their test accuracy."""
    if args.threads:
        torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    train, test = _load(args, "train"), _load(args, "test")
    ev = _evaluators(args, train)
    from training.evaluate import chance_levels, predict, score
    from training.evaluators import linkage_pairs

    pairs = linkage_pairs(test.performer, np.random.default_rng([0, 99]))
    ref = predict(ev, centre_windows(test))
    m = score(ev, test, ref, pairs, ref, float("nan"))
    ch = chance_levels(test, ev)
    print(f"pmr train-evaluators: {len(train)} training / {len(test)} test clips, {time.perf_counter() - t0:.0f} s")
    for k, v in m.items():
        if k != "mse":
            print(f"  {k:12s} {100 * v:5.1f}%   (chance {100 * ch.get(k, float('nan')):.1f}%)")
    return 0


def evaluate_command(args: Any) -> int:
    """``pmr evaluate``: see ``pmr evaluate --help``."""
    from pmr_stream.anonymize import load_dummy
    from pmr_stream.assets import DEFAULT_DUMMY, DEFAULT_MODEL
    from pmr_stream.model.checkpoint import load_model

    if args.threads:
        torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)  # near-zero softmax weights in SGN otherwise slow the CPU by a third
    t0 = time.perf_counter()
    policies = tuple(p.strip() for p in args.policies.split(",") if p.strip())
    bad = [p for p in policies if p not in POLICIES]
    if bad or not policies:
        raise SystemExit(f"pmr evaluate: --policies must name some of {', '.join(POLICIES)}; got {args.policies!r}")
    if args.seeds < 1:
        raise SystemExit("pmr evaluate: --seeds must be at least 1")
    train, test = _load(args, "train"), _load(args, "test")
    if args.max_test is not None:
        test = test.subset(np.arange(min(args.max_test, len(test))))
    ev = _evaluators(args, train)
    t_ev = time.perf_counter() - t0
    dummy_path = Path(args.dummy) if args.dummy else DEFAULT_DUMMY
    dummy = load_dummy(dummy_path)
    methods: list[Method] = []
    model_paths = args.model_path or [str(DEFAULT_MODEL)]
    for i, mp in enumerate(model_paths):
        model, _ = load_model(mp)
        name = "PMR" if len(model_paths) == 1 else f"PMR [{Path(mp).name}]"
        if Path(mp).resolve() == DEFAULT_MODEL.resolve():
            name = "PMR (shipped)" if len(model_paths) > 1 else "PMR"
        fn = network_fn(model, device=args.device)
        methods.append(Method(name, "pmr", fn, policies, source=str(mp)))
        if i == 0:
            methods.append(Method(f"{name} + dummy bones", "pmr", with_dummy_bones(fn), policies, source=str(mp)))
        if i == 0 and not args.no_stream:
            stream_row = _stream_method(args, mp, dummy_path, test)
    dmr = None if (args.dmr_path or "").lower() == "none" else Path(args.dmr_path) if args.dmr_path else DEFAULT_DMR
    if dmr is not None:
        if dmr.is_file():
            model, _ = load_model(dmr)
            methods.append(Method("DMR", "dmr", network_fn(model, device=args.device), policies, source=str(dmr)))
        else:
            print(f"pmr evaluate: no DMR checkpoint at {dmr}: the DMR row is left out (train one with pmr train --dmr)")
    if not args.no_fk:
        methods.append(Method("FK baseline", "fk", fk_anonymize, policies, source="bone lengths set to the dummy's"))
    if not args.no_stream:
        methods.append(stream_row)
    seeds = list(range(args.seeds))
    info = {"dataset": args.dataset, "evaluator_spec": ev.spec.to_dict(), "evaluator_facts": ev.facts,
            "dummy": str(dummy_path), "evaluators_seconds": t_ev, "train_clips": len(train)}  # fmt: skip
    result = evaluate(ev, test, methods, dummy, seeds, progress=not args.quiet, info=info)
    result.seconds = time.perf_counter() - t0
    title = ("Stand-in dataset (synthetic, NOT NTU RGB+D)" if args.dataset == "standin" else "NTU-60 cross-view") + \
        f", {len(test)} test clips"
    out = Path(args.output) if args.output else Path("out") / f"eval_{args.dataset}"
    paths = write_outputs(result, out, title)
    print(markdown_table(result, title))
    print(f"\npmr evaluate: {result.seconds:.0f} s in all ({t_ev:.0f} s loading data and evaluators); "
          f"wrote {paths['markdown']}, {paths['json']}, {paths['chart']}")  # fmt: skip
    return 0


def _stream_method(args: Any, model_path: str, dummy_path: Path, test: Any) -> Method:
    """The streaming-path row: outputs computed once (constant dummy), returned for every seed."""
    from pmr_stream.backends import get_backend

    t0 = time.perf_counter()
    backend = get_backend(args.stream_backend, model_path=str(model_path), dummy=str(dummy_path),
                          device=args.device)  # fmt: skip
    window = backend.source.dummy_window
    bones = median_bone_lengths(window) if args.stream_bones == "dummy" else None
    outputs = stream_outputs(test, backend, args.stream_policy, progress=not args.quiet, bones=bones)
    name = getattr(backend, "name", args.stream_backend)
    backend.close()
    log.info("streaming path: %d clips in %.1f s", len(test), time.perf_counter() - t0)

    def fn(windows: np.ndarray, dummies: np.ndarray) -> np.ndarray:
        if len(windows) != len(outputs):
            raise ValueError("the streaming row was computed for another test set")
        return outputs

    label = f"PMR streaming ({args.stream_policy}, {args.stream_bones} bones, {name})"
    return Method(label, "stream", fn, ("constant",), source=str(model_path))


__all__ = ["DEFAULT_DMR", "evaluate_command", "train_evaluators_command"]
