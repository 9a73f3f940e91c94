"""PMR's losses (../shared/docs/PMR_FACTS.md), written from their definitions.

All skeleton tensors are ``(B, 75, 25, 3)`` normalised coordinates (metres);
embeddings are ``(B, C0, C1)``. Paired quadruplets follow the paper's naming:
performers P1 != P2, actions A1 != A2, same camera,
``x1 = (P1, A1)``, ``x2 = (P2, A2)``, ``y1 = (P1, A2)``, ``y2 = (P2, A1)``.
``D(E_M(x1), E_P(x2))`` shows A1 performed by P2, so its target is **y2** (the
paper's code compared it with y1; its latent-consistency and triplet anchors
were swapped the same way: we pair every term with the sample whose content it
really has).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch.nn import functional as F

from pmr_stream.config import LossWeights
from pmr_stream.model.heads import Adversaries
from pmr_stream.model.pmr import PMRModel
from pmr_stream.skeleton import NTU_END_EFFECTOR_CHAIN, NTU_END_EFFECTORS


def reconstruction(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Squared error summed over the 75 frames, averaged over batch, joints and xyz (the paper's scale)."""
    return (pred - target).pow(2).sum(dim=1).mean()


def end_effector_velocity(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Speed of the end effectors (feet, hand tips, thumbs, head), each divided by its
    chain length, compared by squared error; summed over frames, averaged over batch and joints."""
    idx = list(NTU_END_EFFECTORS)
    chain = torch.tensor(NTU_END_EFFECTOR_CHAIN, dtype=pred.dtype, device=pred.device)  # (7,)
    vp = (pred[:, 1:, idx] - pred[:, :-1, idx]).norm(dim=-1) / chain  # (B, T-1, 7)
    vt = (target[:, 1:, idx] - target[:, :-1, idx]).norm(dim=-1) / chain  # (B, T-1, 7)
    return (vp - vt).pow(2).sum(dim=1).mean()


def smoothness(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """How far the prediction's frame-to-frame motion departs from the target's:
    per joint, the difference of squared velocities, summed, square-rooted and divided
    by B*T (the paper's normalisation), so jitter the target lacks is penalised."""
    sp = (pred[:, 1:] - pred[:, :-1]).pow(2).sum(dim=-1)  # (B, T-1, 25)
    st = (target[:, 1:] - target[:, :-1]).pow(2).sum(dim=-1)  # (B, T-1, 25)
    return torch.sqrt((sp - st).abs().sum() + 1e-12) / (pred.shape[0] * pred.shape[1])


def triplet(
    anchor: torch.Tensor, positive: torch.Tensor, negative: torch.Tensor, margin: float
) -> torch.Tensor:
    """Triplet margin loss on flattened embeddings ``(B, C0*C1)``."""
    return F.triplet_margin_loss(anchor.flatten(1), positive.flatten(1), negative.flatten(1), margin=margin)


def quality_generator(adv: Adversaries, fake: torch.Tensor) -> torch.Tensor:
    """The autoencoder's GAN term: Q should take its outputs for real ones."""
    logits = adv.quality.logits(fake)
    return F.binary_cross_entropy_with_logits(logits, torch.ones_like(logits))


def quality_discriminator(adv: Adversaries, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """Q's own loss: real windows -> 1, decoded ones -> 0."""
    lr, lf = adv.quality.logits(real), adv.quality.logits(fake.detach())
    return F.binary_cross_entropy_with_logits(lr, torch.ones_like(lr)) + F.binary_cross_entropy_with_logits(
        lf, torch.zeros_like(lf)
    )


def embedding_terms(
    adv: Adversaries,
    motion: torch.Tensor,
    privacy: torch.Tensor,
    performer: torch.Tensor,
    action: torch.Tensor,
    w: LossWeights,
) -> tuple[torch.Tensor, dict[str, float]]:
    """The autoencoder's adversarial/cooperative term:
    ``alpha_priv * (-CE(priv_adv(E_M), P) + CE(priv_coop(E_P), P))
    + alpha_util * (-CE(util_adv(E_P), A) + CE(util_coop(E_M), A))`` (logits into CE),
    with each adversary's CE capped at chance, ``log K``."""
    lg_pa = adv.priv_adv(motion)
    lg_ua = adv.util_adv(privacy)
    ce_pa = F.cross_entropy(lg_pa, performer)
    ce_pc = F.cross_entropy(adv.priv_coop(privacy), performer)
    ce_ua = F.cross_entropy(lg_ua, action)
    ce_uc = F.cross_entropy(adv.util_coop(motion), action)
    # The encoders gain nothing from pushing an adversary past chance level: its
    # cross-entropy is capped at log(K) (chance), so -CE cannot run off to -infinity
    # by blowing up the embeddings (which wrecks reconstruction).
    cap_p, cap_a = math.log(lg_pa.shape[1]), math.log(lg_ua.shape[1])
    total = w.alpha_priv * (-ce_pa.clamp(max=cap_p) + ce_pc) + w.alpha_util * (
        -ce_ua.clamp(max=cap_a) + ce_uc
    )
    return total, {
        "ce_priv_adv": ce_pa.item(),
        "ce_priv_coop": ce_pc.item(),
        "ce_util_adv": ce_ua.item(),
        "ce_util_coop": ce_uc.item(),
    }


def classifier_loss(
    adv: Adversaries,
    motion: torch.Tensor,
    privacy: torch.Tensor,
    performer: torch.Tensor,
    action: torch.Tensor,
) -> tuple[torch.Tensor, dict[str, float]]:
    """The four classifiers' own losses (each learns its label from its embedding; embeddings detached)."""
    motion, privacy = motion.detach(), privacy.detach()
    logits = {
        "priv_adv": (adv.priv_adv(motion), performer),
        "priv_coop": (adv.priv_coop(privacy), performer),
        "util_adv": (adv.util_adv(privacy), action),
        "util_coop": (adv.util_coop(motion), action),
    }
    total = torch.zeros((), device=motion.device)
    stats: dict[str, float] = {}
    for name, (lg, y) in logits.items():
        loss = F.cross_entropy(lg, y)
        total = total + loss
        stats[f"acc_{name}"] = (lg.argmax(dim=1) == y).float().mean().item()
    return total, stats


def quadruplet_labels(batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Performer and action labels ``(4B,)`` of ``cat([x1, x2, y1, y2])``:
    x1 = (P1, A1), x2 = (P2, A2), y1 = (P1, A2), y2 = (P2, A1)."""
    p1, p2, a1, a2 = batch["performer1"], batch["performer2"], batch["action1"], batch["action2"]
    return torch.cat([p1, p2, p1, p2]), torch.cat([a1, a2, a2, a1])


@dataclass
class LossOutput:
    total: torch.Tensor
    parts: dict[str, float]


def _adversarial_terms(
    adv: Adversaries,
    motion: torch.Tensor,
    privacy: torch.Tensor,
    performer: torch.Tensor,
    action: torch.Tensor,
    decoded: torch.Tensor,
    w: LossWeights,
    parts: dict[str, float],
) -> torch.Tensor:
    """The classifier terms and Q's GAN term of the autoencoder loss (logged into ``parts``)."""
    emb, stats = embedding_terms(adv, motion, privacy, performer, action, w)
    q = quality_generator(adv, decoded)
    parts.update(stats)
    parts.update({"emb": emb.item(), "q_gen": q.item()})
    return emb + w.quality * q


def unpaired_ae_loss(
    model: PMRModel,
    x: torch.Tensor,
    w: LossWeights,
    adv: Adversaries | None = None,
    performer: torch.Tensor | None = None,
    action: torch.Tensor | None = None,
) -> LossOutput:
    """Autoencoder loss on single clips ``x (B, 75, 25, 3)``: reconstruction, end effectors,
    smoothness, and with ``adv`` the classifier and Q terms."""
    motion, privacy = model.get_embeddings(x)  # (B, C0, C1) each
    x_hat = model.decode(motion, privacy)  # (B, 75, 25, 3)
    rec = reconstruction(x_hat, x)
    ee = end_effector_velocity(x_hat, x)
    smooth = smoothness(x_hat, x)
    total = w.reconstruction * rec + w.end_effector * ee + w.smoothness * smooth
    parts = {"rec": rec.item(), "ee": ee.item(), "smooth": smooth.item()}
    if adv is not None:
        assert performer is not None and action is not None
        total = total + _adversarial_terms(adv, motion, privacy, performer, action, x_hat, w, parts)
    parts["total"] = total.item()
    return LossOutput(total, parts)


def paired_ae_loss(
    model: PMRModel,
    batch: dict[str, torch.Tensor],
    w: LossWeights,
    adv: Adversaries | None = None,
) -> LossOutput:
    """Autoencoder loss on paired quadruplets (:class:`training.datasets.PairedDataset` items:
    x1, x2, y1, y2, performer1, performer2, action1, action2).

    Reconstruction of all four; cross reconstruction with the right targets
    (``D(E_M(x1), E_P(x2)) -> y2``, ``D(E_M(x2), E_P(x1)) -> y1``,
    ``D(E_M(y2), E_P(y1)) -> x1``, ``D(E_M(y1), E_P(y2)) -> x2``); end effectors and
    smoothness on all eight outputs; triplets and latent consistency between
    embeddings that share content (motion of x1 and y2 is A1, privacy of x1 and y1 is P1).
    """
    x1, x2, y1, y2 = batch["x1"], batch["x2"], batch["y1"], batch["y2"]
    b = x1.shape[0]
    stacked = torch.cat([x1, x2, y1, y2])  # (4B, 75, 25, 3)
    m, p = model.get_embeddings(stacked)
    m_x1, m_x2, m_y1, m_y2 = m.split(b)  # motion: A1, A2, A2, A1
    p_x1, p_x2, p_y1, p_y2 = p.split(b)  # privacy: P1, P2, P1, P2
    motions = torch.cat([m_x1, m_x2, m_y1, m_y2, m_x1, m_x2, m_y2, m_y1])
    privacies = torch.cat([p_x1, p_x2, p_y1, p_y2, p_x2, p_x1, p_y1, p_y2])
    out = model.decode(motions, privacies)  # (8B, 75, 25, 3)
    self_rec, cross_rec = out[: 4 * b], out[4 * b :]
    targets_self = stacked
    targets_cross = torch.cat([y2, y1, x1, x2])
    rec = reconstruction(self_rec, targets_self)
    cross = reconstruction(cross_rec, targets_cross)
    all_targets = torch.cat([targets_self, targets_cross])
    ee = end_effector_velocity(out, all_targets)
    smooth = smoothness(out, all_targets)
    trip = (
        triplet(m_y2, m_x1, m_x2, w.triplet_margin)  # A1 anchors A1, not A2
        + triplet(m_y1, m_x2, m_x1, w.triplet_margin)
        + triplet(p_y1, p_x1, p_x2, w.triplet_margin)  # P1 anchors P1, not P2
        + triplet(p_y2, p_x2, p_x1, w.triplet_margin)
    )
    latent = (
        F.mse_loss(m_x1, m_y2) + F.mse_loss(m_x2, m_y1) + F.mse_loss(p_x1, p_y1) + F.mse_loss(p_x2, p_y2)
    ) / 4
    total = (
        w.reconstruction * rec + w.cross * cross + w.end_effector * ee + w.smoothness * smooth
        + w.triplet * trip + w.latent * latent
    )  # fmt: skip
    parts = {"rec": rec.item(), "cross": cross.item(), "ee": ee.item(), "smooth": smooth.item(),
             "triplet": trip.item(), "latent": latent.item()}  # fmt: skip
    if adv is not None:
        perf, act = quadruplet_labels(batch)
        total = total + _adversarial_terms(adv, m, p, perf, act, out, w, parts)
    parts["total"] = total.item()
    return LossOutput(total, parts)
