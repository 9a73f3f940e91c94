"""The evaluation's output: the markdown tables, the privacy/utility chart and the report files.

:func:`markdown_table` lays out the paper-layout table (:func:`training.evaluate.evaluate`),
:func:`protocol_table` one protocol's fixed/adaptive table
(:func:`training.protocol_eval.evaluate_protocol`), :func:`plot_privacy_utility` its chart
with the published anchors, :func:`write_outputs` all of it as ``eval.md``, ``eval.json``
and ``privacy_utility.png``.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any, Final

import numpy as np

from .evaluate import EvalResult
from .protocol_eval import FIDELITY, ProtocolResult

#: Published NTU-60 points (action top-1 %, re-ID top-1 %), all measured with attackers trained
#: on originals only; ranges are given as their midpoints (see issue 13's table).
ANCHORS: Final[tuple[tuple[str, float, float], ...]] = (
    ("raw", (82.2 + 89.1) / 2, (75.4 + 87.8) / 2),
    ("PMR", 35.7, 7.8),
    ("DisentangledTMR", 75.8, 18.1),
    ("MIRAGE", 89.0, 35.6),
    ("Moon et al.", (0.8 + 2.6) / 2, (3.0 + 9.1) / 2),
)

# ----------------------------------------------------------------------------- the paper-layout table

_COLUMNS: Final[tuple[tuple[str, str], ...]] = (
    ("MSE", "mse"), ("AR top-1", "action_top1"), ("AR top-5", "action_top5"), ("Re-ID top-1", "reid_top1"),
    ("Re-ID top-5", "reid_top5"), ("Gender", "gender"), ("Linkage", "linkage"),
)  # fmt: skip
POLICY_LABEL: Final[dict[str, str]] = {
    "-": "-",
    "constant": "constant",
    "random": "random other",
    "same_action": "same action",
}


def _cell(key: str, mean: float, std: float) -> str:
    if np.isnan(mean):
        return "-"
    if key == "mse":
        return f"{mean:.4f} ± {std:.4f}"
    return f"{100 * mean:.1f} ± {100 * std:.1f}"


def markdown_table(result: EvalResult, title: str = "") -> str:
    """The table in the paper's layout (percent; MSE in m^2), one row per method and dummy policy."""
    lines = [f"**{title}**", ""] if title else []
    lines.append("| Method | Dummy | " + " | ".join(c for c, _ in _COLUMNS) + " |")
    lines.append("|---|---|" + "---|" * len(_COLUMNS))
    for r in result.rows:
        s = r.summary()
        cells = [_cell(k, *s[k]) if k in s else "n/a" for _, k in _COLUMNS]
        lines.append(f"| {r.method} | {POLICY_LABEL.get(r.policy, r.policy)} | " + " | ".join(cells) + " |")
    ch = result.chance
    lines.append(
        "| *chance* | - | - | "
        + " | ".join(f"{100 * ch[k]:.1f}" if k in ch else "n/a" for _, k in _COLUMNS[1:])
        + " |"
    )
    lines.append("")
    lines.append(f"Mean ± standard deviation over {len(result.seeds)} seeds ({', '.join(map(str, result.seeds))}); "
                 f"{result.info.get('test_clips', '?')} test clips; accuracies in percent, MSE in m² "
                 "(normalised coordinates, every frame and joint).")  # fmt: skip
    return "\n".join(lines)


# ----------------------------------------------------------------------------- protocol tables and the chart

_PCOLUMNS: Final[tuple[tuple[str, str], ...]] = (
    ("AR top-1", "action_top1"), ("Re-ID top-1", "reid_top1"), ("Gender", "gender"), ("Linkage", "linkage"),
)  # fmt: skip


def _pct(s: dict[str, tuple[float, float]], key: str) -> str:
    if key not in s or np.isnan(s[key][0]):
        return "n/a"
    m, sd = s[key]
    return f"{100 * m:.1f}" if sd == 0 else f"{100 * m:.1f} ± {100 * sd:.1f}"


def protocol_table(result: ProtocolResult, title: str = "") -> str:
    """The fixed/adaptive table of one protocol (markdown): fidelity in mm, accuracies in percent."""
    head = ["Method", "MPJPE mm", "Bone err mm", "Jitter mm/f²"]
    for label, _ in _PCOLUMNS:
        head += [f"{label} fixed", f"{label} adaptive"]
    head.append("Attacker cost s")
    lines = [f"**{title}**", ""] if title else []
    lines += ["| " + " | ".join(head) + " |", "|---" * len(head) + "|"]
    for r in result.rows:
        fx, ad = r.summary("fixed"), r.summary("adaptive")
        cells = [r.method] + [f"{r.fidelity[k]:.1f}" if k in r.fidelity else "-" for k in FIDELITY]
        for _, k in _PCOLUMNS:
            cells += [_pct(fx, k), _pct(ad, k) if r.adaptive else "-"]
        cells.append("= fixed" if r.path == "-" else "(offline's)" if r.path == "streaming" and r.adaptive else
                     f"{r.attacker_seconds:.0f}" if r.attacker_seconds is not None else "-")  # fmt: skip
        lines.append("| " + " | ".join(cells) + " |")
    ch = result.chance
    chance = ["*chance / majority*", "-", "-", "-"]
    for _, k in _PCOLUMNS:
        v = f"{100 * ch[k]:.1f}" if k in ch else "n/a"
        chance += [v, v]
    lines.append("| " + " | ".join(chance + ["-"]) + " |")
    orig = next((r for r in result.rows if r.path == "-"), None)
    info = result.info
    lines.append("")
    note = (f"{result.protocol}: {result.description}. {info.get('test_clips', '?')} test clips. Fixed: evaluators "
            f"trained on the original training clips; adaptive: warm-started from them and fine-tuned on the "
            f"method's own anonymized training clips ({info.get('attacker_train_clips', '?')} clips, "
            f"{(info.get('adaptive') or {}).get('epochs', '?')} epochs); adaptive linkage anonymizes both windows "
            "of a pair. The Original row's adaptive figures are the fixed ones (nothing to retrain on); a "
            "streaming row reuses its offline row's attackers. MPJPE against the FK retarget of the original "
            "onto the dummy's bones; bone error against the dummy's median bones; jitter: mean norm of the "
            "second difference over the 75 frames")  # fmt: skip
    if orig is not None and "target_jitter_mm" in orig.fidelity:
        note += f" (the FK target's own jitter: {orig.fidelity['target_jitter_mm']:.1f} mm/frame²)"
    note += (f". Mean ± std over {len(result.seeds)} seeds (they draw the linkage pairs; a figure without ± "
             "does not depend on the seed). Attacker cost: anonymizing the training clips plus fine-tuning the "
             "four attackers, seconds on this host.")  # fmt: skip
    if not any(r.adaptive for r in result.rows if r.path != "-"):
        note += " Adaptive attackers were not trained (--no-adaptive)."
    lines.append(note)
    return "\n".join(lines)


def plot_privacy_utility(result: ProtocolResult, path: str | Path, title: str = "") -> Path:
    """The privacy/utility chart: x = action top-1 by the fixed recogniser, y = re-ID top-1 by the
    retrained (adaptive) attacker (the fixed one where none was trained), one point per row of
    ``result``; the published NTU-60 anchors as hollow grey markers; chance lines dashed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 6))
    cmap = plt.get_cmap("tab10")
    markers = {"-": "*", "offline": "o", "streaming": "s"}
    for i, r in enumerate(result.rows):
        fx = r.summary("fixed")
        ad = r.summary("adaptive") if r.adaptive else fx
        if "action_top1" not in fx or "reid_top1" not in ad:
            continue
        (x, xs), (y, ys) = fx["action_top1"], ad["reid_top1"]
        ax.errorbar(100 * x, 100 * y, xerr=100 * xs, yerr=100 * ys, fmt=markers.get(r.path, "o"), color=cmap(i % 10),
                    markersize=12 if r.path == "-" else 8, capsize=3, label=r.method)  # fmt: skip
    for j, (name, ar, reid) in enumerate(ANCHORS):
        ax.plot(ar, reid, "o", mfc="none", mec="grey", ms=9, mew=1.5,
                label="published NTU-60, fixed attackers" if j == 0 else None)  # fmt: skip
        ax.annotate(name, (ar, reid), textcoords="offset points", xytext=(6, 4), color="grey", fontsize=8)
    ch = result.chance
    if "reid_top1" in ch:
        ax.axhline(100 * ch["reid_top1"], color="grey", ls="--", lw=1)
    if "action_top1" in ch:
        ax.axvline(100 * ch["action_top1"], color="grey", ls="--", lw=1)
        ax.text(
            100 * ch["action_top1"],
            100 * ch.get("reid_top1", 0),
            " chance",
            color="grey",
            va="bottom",
            fontsize=8,
        )
    ax.set_xlabel("action recognition top-1 (%), recogniser trained on originals  → more utility")
    ax.set_ylabel("re-identification top-1 (%), attacker retrained on the output  → less privacy")
    ax.set_xlim(0, 100)
    ax.set_ylim(0, 100)
    ax.grid(alpha=0.3)
    ax.set_title(textwrap.fill(title or f"privacy / utility ({result.protocol})", 90), fontsize=9)
    ax.legend(fontsize=7, loc="upper left", framealpha=0.9)
    fig.tight_layout()
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out


def report_markdown(protocols: list[ProtocolResult], paper: EvalResult | None, title: str) -> str:
    """The whole report: one fixed/adaptive table per protocol, then the cross-view paper-layout table."""
    parts = []
    for p in protocols:
        parts.append(protocol_table(p, f"{title}: {p.protocol}, fixed and adaptive attackers"))
    if paper is not None:
        parts.append(
            markdown_table(paper, f"{title}: cross-view, the paper's layout (fixed evaluators, window level)")
        )
    return "\n\n".join(parts)


def write_outputs(
    out_dir: str | Path, title: str, protocols: list[ProtocolResult], paper: EvalResult | None = None,
    info: dict[str, Any] | None = None,
) -> dict[str, Path]:  # fmt: skip
    """``eval.md``, ``eval.json`` and ONE ``privacy_utility.png`` (of cross-take when it was run,
    else of the first protocol) in ``out_dir``."""
    d = Path(out_dir)
    d.mkdir(parents=True, exist_ok=True)
    md = d / "eval.md"
    md.write_text(report_markdown(protocols, paper, title) + "\n")
    js = d / "eval.json"
    doc = {"title": title, "info": info or {}, "protocols": {p.protocol: p.to_json() for p in protocols},
           "paper_table": paper.to_json() if paper is not None else None,
           "anchors": [{"method": n, "action_top1": a, "reid_top1": r, "note": "published NTU-60, fixed attackers"}
                       for n, a, r in ANCHORS]}  # fmt: skip
    js.write_text(json.dumps(doc, indent=2, default=float))
    paths = {"markdown": md, "json": js}
    chart = next((p for p in protocols if p.protocol == "cross-take"), protocols[0] if protocols else None)
    if chart is not None:
        paths["chart"] = plot_privacy_utility(chart, d / "privacy_utility.png",
                                              f"{title}: {chart.protocol}; x: fixed recogniser, y: retrained attacker")  # fmt: skip
    return paths


__all__ = [
    "ANCHORS", "POLICY_LABEL", "markdown_table", "plot_privacy_utility", "protocol_table", "report_markdown",
    "write_outputs",
]  # fmt: skip
