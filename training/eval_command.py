"""``pmr evaluate`` and ``pmr train-evaluators``: the command-line side of :mod:`training.evaluate`,
:mod:`training.protocol_eval` and :mod:`training.report`.

``pmr evaluate`` runs, for each protocol (:mod:`training.protocols`; both by default), the
fixed/adaptive table of every method through the offline and streaming paths, and on
cross-view the paper-layout table too; ``--quick`` is the cheap variant (cross-take only,
one seed, fewer epochs, the default anonymizer's rows, its own evaluator cache).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import torch

from pmr_stream.skeleton import median_bone_lengths, retarget_bones
from pmr_stream.synth.dataset import DEFAULT_STANDIN_PATH

from .adaptive import AdaptiveSpec
from .evaluate import POLICIES, EvalResult, Method, evaluate, network_fn, with_dummy_bones
from .evaluators import TASKS, EvaluatorSpec, centre_windows, load_or_train
from .fk_baseline import fk_anonymize
from .protocol_eval import Anonymizer, ProtocolResult, evaluate_protocol
from .protocols import get_protocol, parse_protocols
from .report import markdown_table, protocol_table, write_outputs

log = logging.getLogger(__name__)

#: The DMR baseline trained on the stand-in dataset (see training/assets/README.md).
DEFAULT_DMR: Final[Path] = Path(__file__).resolve().parent / "assets" / "dmr_standin.pt"
#: The paper-faithful PMR (its row is left out, with a note, when the file is missing).
DEFAULT_PAPER_MODEL: Final[Path] = (
    Path(__file__).resolve().parents[1] / "pmr_stream" / "assets" / "pmr_paper.pt"
)


@dataclass(frozen=True)
class QuickSettings:
    """What ``--quick`` changes (each overridable by its own flag): one protocol, one seed,
    fewer evaluator and attacker epochs, fewer linkage pairs, a subset of the training clips
    for the attackers, and only the default anonymizer's rows (Original, FK, every privacy
    level offline, the default level streaming)."""

    protocol: str = "cross-take"
    seeds: int = 1
    evaluator_epochs: int = 10
    pairs_per_epoch: int = 1024
    adaptive_epochs: int = 4
    adaptive_clips: int = 760


QUICK: Final[QuickSettings] = QuickSettings()
FULL_SEEDS: Final[int] = 5
FULL_ADAPTIVE_EPOCHS: Final[int] = 6


def _value(args: Any, name: str, quick: Any, full: Any) -> Any:
    v = getattr(args, name, None)
    return v if v is not None else (quick if getattr(args, "quick", False) else full)


def _spec(args: Any) -> EvaluatorSpec:
    spec = EvaluatorSpec.paper() if args.sgn_size == "paper" else EvaluatorSpec()
    epochs = _value(args, "evaluator_epochs", QUICK.evaluator_epochs, spec.epochs)
    pairs = QUICK.pairs_per_epoch if getattr(args, "quick", False) else spec.pairs_per_epoch
    return replace(spec, epochs=epochs, pairs_per_epoch=pairs)


def _load_all(args: Any) -> Any:
    """Every clip of the dataset (all cameras and replications), for the protocols to split."""
    from .data import DataConfig, load_clips
    from .train import ensure_standin

    path = Path(args.data) if args.data else (DEFAULT_STANDIN_PATH if args.dataset == "standin" else None)
    if path is None:
        raise SystemExit(
            "pmr evaluate: --data DIR (the NTU-60 .skeleton files) is required for --dataset ntu60"
        )
    if args.dataset == "standin" and path.suffix == ".npz":
        path = ensure_standin(path)
    cfg = DataConfig(dataset=args.dataset, path=path, split="all", genders=args.genders, allow_unknown_gender=args.genders is None,
                     cache=args.cache)  # fmt: skip
    return load_clips(cfg)


def _cache_dir(args: Any, protocol: str) -> Path:
    """``--evaluators DIR``/<protocol>, else runs/evaluators/<dataset>[-quick]/<protocol>."""
    if args.evaluators:
        return Path(args.evaluators) / protocol
    return (
        Path("runs/evaluators")
        / (args.dataset + ("-quick" if getattr(args, "quick", False) else ""))
        / protocol
    )


def _evaluators(args: Any, train: Any, protocol: str) -> Any:
    return load_or_train(train, _cache_dir(args, protocol), _spec(args), tasks=TASKS, retrain=args.retrain_evaluators,
                         progress=not args.quiet, device=args.device)  # fmt: skip


def _protocols(args: Any) -> tuple[str, ...]:
    value = _value(args, "protocol", QUICK.protocol, "both")
    try:
        return parse_protocols(value)
    except ValueError as exc:
        raise SystemExit(f"pmr evaluate: --protocol: {exc}") from None


def _split(args: Any, clips: Any, protocol: str) -> tuple[Any, Any]:
    try:
        train, test = get_protocol(protocol).split(clips)
    except ValueError as exc:
        raise SystemExit(f"pmr evaluate: {exc}") from None
    if getattr(args, "max_test", None) is not None:
        test = test.subset(np.arange(min(args.max_test, len(test))))
    return train, test


def train_evaluators_command(args: Any) -> int:
    """``pmr train-evaluators``: train (or refresh) each protocol's cached evaluators and print their test accuracy."""
    from .evaluate import chance_levels, predict, score
    from .evaluators import linkage_pairs

    if args.threads:
        torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)
    clips = _load_all(args)
    for protocol in _protocols(args):
        t0 = time.perf_counter()
        train, test = _split(args, clips, protocol)
        ev = _evaluators(args, train, protocol)
        pairs = linkage_pairs(test.performer, np.random.default_rng([0, 99]))
        ref = predict(ev, centre_windows(test))
        m = score(ev, test, ref, pairs, ref, float("nan"))
        ch = chance_levels(test, ev)
        print(f"pmr train-evaluators ({protocol}, {_cache_dir(args, protocol)}): {len(train)} training / "
              f"{len(test)} test clips, {time.perf_counter() - t0:.0f} s")  # fmt: skip
        for k, v in m.items():
            if k != "mse":
                print(f"  {k:12s} {100 * v:5.1f}%   (chance {100 * ch.get(k, float('nan')):.1f}%)")
    return 0


# ----------------------------------------------------------------------------- the default anonymizer and its dial


def default_anonymizer_fn(model_path: Path, dummy_path: Path, device: str, level: str | None) -> Any:
    """:func:`~pmr_stream.offline.default_window_fn` at a privacy level (``None``: the model's default,
    or a model without a dial)."""
    from pmr_stream.offline import default_window_fn

    return default_window_fn(model_path, dummy_path, device, privacy=level)[0]


def stream_backend_factory(
    args: Any, model_path: Path, dummy_path: Path, level: str | None
) -> Callable[[], Any]:
    """A factory of the streaming row's backend at privacy ``level`` (``get_backend``)."""

    def make() -> Any:
        from pmr_stream.backends import get_backend

        return get_backend(args.stream_backend, model_path=str(model_path), dummy=str(dummy_path), device=args.device,
                           privacy=level)  # fmt: skip

    return make


def _fk_window_fn(
    lengths: npt.NDArray[np.float32],
) -> Callable[[npt.NDArray[np.float32]], npt.NDArray[np.float32]]:
    def run(windows: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        return retarget_bones(windows, lengths)

    return run


@dataclass
class _Built:
    anonymizers: list[Anonymizer]
    paper_methods: list[Method]
    notes: list[str]


def build_methods(
    args: Any, dummy: npt.NDArray[np.float32], dummy_path: Path, policies: tuple[str, ...]
) -> _Built:
    """The rows ``pmr evaluate`` builds: FK baseline; the paper-faithful PMR (``--paper-model``);
    DMR; the shipped default at each privacy level (and its streaming row at the default
    level); each ``--model-path``. ``--quick``: FK and the default's rows only."""
    from pmr_stream.assets import DEFAULT_MODEL
    from pmr_stream.model.checkpoint import load_model

    quick = getattr(args, "quick", False)
    lengths = median_bone_lengths(dummy)
    out = _Built([], [], [])
    if not args.no_fk:
        out.anonymizers.append(
            Anonymizer(
                "FK baseline", "fk", _fk_window_fn(lengths), None, source="bone lengths set to the dummy's"
            )
        )
        out.paper_methods.append(
            Method("FK baseline", "fk", fk_anonymize, policies, source="bone lengths set to the dummy's")
        )
    if not quick:
        paper = (
            None
            if (args.paper_model or "").lower() == "none"
            else Path(args.paper_model)
            if args.paper_model
            else DEFAULT_PAPER_MODEL
        )
        if paper is not None and paper.is_file():
            fn = default_anonymizer_fn(paper, dummy_path, args.device, None)
            out.anonymizers.append(Anonymizer("PMR (paper)", "pmr", fn, lengths, source=str(paper)))
            model, _ = load_model(paper)
            wfn = network_fn(model, device=args.device)
            out.paper_methods.append(Method("PMR (paper)", "pmr", wfn, policies, source=str(paper)))
            out.paper_methods.append(
                Method("PMR (paper) + dummy bones", "pmr", with_dummy_bones(wfn), policies, source=str(paper))
            )
        elif paper is not None:
            out.notes.append(f"no paper-faithful PMR at {paper}: its row is left out (--paper-model PATH)")
        dmr = (
            None
            if (args.dmr_path or "").lower() == "none"
            else Path(args.dmr_path)
            if args.dmr_path
            else DEFAULT_DMR
        )
        if dmr is not None and dmr.is_file():
            model, _ = load_model(dmr)
            out.anonymizers.append(
                Anonymizer(
                    "DMR",
                    "dmr",
                    default_anonymizer_fn(dmr, dummy_path, args.device, None),
                    None,
                    source=str(dmr),
                )
            )
            out.paper_methods.append(
                Method("DMR", "dmr", network_fn(model, device=args.device), policies, source=str(dmr))
            )
        elif dmr is not None:
            out.notes.append(
                f"no DMR checkpoint at {dmr}: the DMR row is left out (train one with pmr train --dmr)"
            )
    from pmr_stream.model.privacy_dial import DEFAULT_PRIVACY, PRIVACY_LEVELS

    levels, default_level = PRIVACY_LEVELS, DEFAULT_PRIVACY
    wanted = (
        tuple(x.strip() for x in args.privacy_levels.split(",") if x.strip())
        if getattr(args, "privacy_levels", None)
        else levels
    )
    bad = [x for x in wanted if x not in levels]
    if bad:
        raise SystemExit(
            f"pmr evaluate: --privacy-levels: unknown level(s) {', '.join(bad)}; choose from {', '.join(levels)}"
        )
    for level in wanted:
        fn = default_anonymizer_fn(DEFAULT_MODEL, dummy_path, args.device, level)
        stream = None
        if level == default_level and not args.no_stream:
            stream = stream_backend_factory(args, DEFAULT_MODEL, dummy_path, level)
        out.anonymizers.append(Anonymizer(
            f"Default [{level}]", "default", fn, lengths, stream=stream,
            stream_name=f"Default [{level}] streaming ({args.stream_policy}, {args.stream_bones} bones, {args.stream_backend})",
            stream_bones=args.stream_bones == "dummy", source=str(DEFAULT_MODEL)))  # fmt: skip
        if not quick:
            win = _constant(fn)
            out.paper_methods.append(Method(f"Default [{level}] + dummy bones", "default", with_dummy_bones(win), ("constant",),
                                            source=str(DEFAULT_MODEL)))  # fmt: skip
    if not quick:
        for mp in args.model_path or []:
            fn = default_anonymizer_fn(Path(mp), dummy_path, args.device, None)
            out.anonymizers.append(Anonymizer(f"PMR [{Path(mp).name}]", "pmr", fn, lengths, source=str(mp)))
            model, _ = load_model(mp)
            out.paper_methods.append(Method(f"PMR [{Path(mp).name}] + dummy bones", "pmr",
                                            with_dummy_bones(network_fn(model, device=args.device)), policies, source=str(mp)))  # fmt: skip
    return out


def _constant(fn: Callable[[npt.NDArray[np.float32]], npt.NDArray[np.float32]]) -> Any:
    """A window function as a constant-dummy :data:`~training.evaluate.AnonymizeFn` (dummies ignored)."""

    def run(windows: npt.NDArray[np.float32], dummies: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        return np.asarray(fn(windows), np.float32)

    return run


# ----------------------------------------------------------------------------- pmr evaluate


def evaluate_command(args: Any) -> int:
    """``pmr evaluate``: see ``pmr evaluate --help``."""
    from pmr_stream.assets import DEFAULT_DUMMY
    from pmr_stream.backends.base import load_dummy

    if args.threads:
        torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)  # near-zero softmax weights in SGN otherwise slow the CPU by a third
    t0 = time.perf_counter()
    quick = bool(getattr(args, "quick", False))
    policies = tuple(p.strip() for p in args.policies.split(",") if p.strip())
    bad = [p for p in policies if p not in POLICIES]
    if bad or not policies:
        raise SystemExit(
            f"pmr evaluate: --policies must name some of {', '.join(POLICIES)}; got {args.policies!r}"
        )
    seeds = list(range(_value(args, "seeds", QUICK.seeds, FULL_SEEDS)))
    if not seeds:
        raise SystemExit("pmr evaluate: --seeds must be at least 1")
    adaptive = None
    if not args.no_adaptive:
        try:
            adaptive = AdaptiveSpec(epochs=_value(args, "adaptive_epochs", QUICK.adaptive_epochs, FULL_ADAPTIVE_EPOCHS),
                                    max_clips=_value(args, "adaptive_clips", QUICK.adaptive_clips, None))  # fmt: skip
        except ValueError as exc:
            raise SystemExit(f"pmr evaluate: {exc}") from None
    protocols = _protocols(args)
    clips = _load_all(args)
    dummy_path = Path(args.dummy) if args.dummy else DEFAULT_DUMMY
    dummy = load_dummy(dummy_path)
    built = build_methods(args, dummy, dummy_path, policies)
    for note in built.notes:
        print(f"pmr evaluate: {note}")
    title = "Stand-in dataset (synthetic, NOT NTU RGB+D)" if args.dataset == "standin" else "NTU-60"
    if quick:
        title += ", quick mode"
    results: list[ProtocolResult] = []
    paper: EvalResult | None = None
    timings: dict[str, float] = {}
    for protocol in protocols:
        t1 = time.perf_counter()
        train, test = _split(args, clips, protocol)
        ev = _evaluators(args, train, protocol)
        timings[f"{protocol}_evaluators_seconds"] = time.perf_counter() - t1
        info = {"dataset": args.dataset, "evaluator_spec": ev.spec.to_dict(), "evaluator_facts": ev.facts,
                "evaluator_cache": str(_cache_dir(args, protocol)), "dummy": str(dummy_path), "quick": quick}  # fmt: skip
        res = evaluate_protocol(protocol, ev, train, test, built.anonymizers, dummy, seeds, adaptive=adaptive,
                                stream_policy=args.stream_policy, description=get_protocol(protocol).description,
                                progress=not args.quiet, device=args.device, info=info)  # fmt: skip
        results.append(res)
        if protocol == "cross-view" and not quick and built.paper_methods:
            paper = evaluate(
                ev, test, built.paper_methods, dummy, seeds, progress=not args.quiet, info=dict(info)
            )
        timings[f"{protocol}_seconds"] = time.perf_counter() - t1
    seconds = time.perf_counter() - t0
    out = (
        Path(args.output)
        if args.output
        else Path("out") / (f"eval_{args.dataset}" + ("_quick" if quick else ""))
    )
    run_info = {"seconds": seconds, **timings, "seeds": seeds, "protocols": list(protocols), "quick": quick,
                "threads": torch.get_num_threads(), "notes": built.notes}  # fmt: skip
    torch.set_flush_denormal(False)  # numpy's float limits (matplotlib asks for them) are wrong with it on
    paths = write_outputs(out, title, results, paper, run_info)
    for res in results:
        print(protocol_table(res, f"{title}: {res.protocol}, fixed and adaptive attackers"))
        print()
        costs = [(r.method, r.attacker_seconds) for r in res.rows if r.attacker_seconds is not None]
        if costs:
            print(f"adaptive attackers ({res.protocol}): " + "; ".join(f"{m} {s:.0f} s" for m, s in costs))
            print()
    if paper is not None:
        print(
            markdown_table(paper, f"{title}: cross-view, the paper's layout (fixed evaluators, window level)")
        )
    print(f"\npmr evaluate: {seconds:.0f} s in all ("
          + ", ".join(f"{k.replace('_seconds', '')} {v:.0f} s" for k, v in timings.items())
          + f"); wrote {paths['markdown']}, {paths['json']}" + (f", {paths['chart']}" if "chart" in paths else ""))  # fmt: skip
    return 0


__all__ = [
    "DEFAULT_DMR", "DEFAULT_PAPER_MODEL", "QUICK", "QuickSettings", "build_methods", "default_anonymizer_fn",
    "evaluate_command", "stream_backend_factory", "train_evaluators_command",
]  # fmt: skip
