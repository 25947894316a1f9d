"""Per-sample training dynamics, from the logits the probe computes anyway.

Every score keeps O(N) memory (dynamic uncertainty O(N * J)); nothing grows with the number of
epochs. The batch statistics come from :func:`batch_statistics` (torch, on the device); the running
bookkeeping here is numpy, indexed by each sample's row index, so it does not care which process
or batch a sample came from.

Scores (higher = harder unless noted):

* ``loss``, ``margin`` (higher = easier), ``entropy``: at the last epoch;
* ``el2n``: ``||softmax(f(x)) - onehot(y)||_2`` at the score epoch (Paul et al., NeurIPS 2021);
* ``grand``: last-layer GraNd at the score epoch, exact for a linear head ``f = W h + b``:
  ``||dL/dW||^2 + ||dL/db||^2 = ||p - y||^2 (||h||^2 + 1)``;
* ``forgetting``: correct-to-incorrect transitions across epochs (Toneva et al., ICLR 2019);
  a sample never learned gets the number of epochs, more than any learned sample can reach;
* ``aum``: mean over epochs of the logit margin ``f_y - max_{i != y} f_i`` (Pleiss et al.,
  NeurIPS 2020; higher = easier);
* ``dynamic_uncertainty``: standard deviation of the true-class probability over a sliding window
  of ``J`` epochs, averaged over windows (He et al., CVPR 2023).
"""

from __future__ import annotations

import numpy as np
import torch
from numpy.typing import NDArray

__all__ = ["STATISTICS", "Dynamics", "batch_statistics"]

# Columns of the per-batch statistics tensor, in order.
STATISTICS = ("loss", "correct", "margin", "p_true", "entropy", "el2n", "grand")


@torch.no_grad()
def batch_statistics(
    logits: torch.Tensor, labels: torch.Tensor, features: torch.Tensor | None
) -> torch.Tensor:
    """A (batch, len(STATISTICS)) float32 tensor of per-sample statistics of one forward pass."""
    logits = logits.detach().float()
    log_p = torch.log_softmax(logits, dim=1)
    p = log_p.exp()
    true_logit = logits.gather(1, labels[:, None])[:, 0]
    others = logits.scatter(1, labels[:, None], float("-inf"))
    residual = p.clone()
    residual[torch.arange(len(labels)), labels] -= 1.0
    el2n = residual.norm(dim=1)
    h_sq = (features.detach().float().flatten(1) ** 2).sum(1) if features is not None else None
    grand = (
        el2n * torch.sqrt(h_sq + 1.0) if h_sq is not None else torch.full_like(el2n, float("nan"))
    )
    return torch.stack(
        [
            -log_p.gather(1, labels[:, None])[:, 0],
            (logits.argmax(1) == labels).float(),
            true_logit - others.max(1).values,
            p.gather(1, labels[:, None])[:, 0],
            -(p * log_p).sum(1),
            el2n,
            grand,
        ],
        dim=1,
    )


class Dynamics:
    """The running per-sample bookkeeping of one probe initialisation."""

    def __init__(self, num_samples: int, num_epochs: int, score_epoch: int, window: int) -> None:
        if not 0 <= score_epoch < num_epochs:
            raise ValueError(f"score_epoch must lie in [0, {num_epochs}), got {score_epoch}")
        self.num_epochs = num_epochs
        self.score_epoch = score_epoch
        self.window = max(1, min(window, num_epochs))  # fewer epochs than J: one shorter window
        n = num_samples
        self.arrays: dict[str, NDArray] = {
            "loss": np.full(n, np.nan, np.float32),
            "margin": np.full(n, np.nan, np.float32),
            "entropy": np.full(n, np.nan, np.float32),
            "el2n": np.full(n, np.nan, np.float32),
            "grand": np.full(n, np.nan, np.float32),
            "grand_full": np.full(n, np.nan, np.float32),
            "correct": np.zeros(n, bool),
            "learned": np.zeros(n, bool),
            "forgetting": np.zeros(n, np.int32),
            "aum_sum": np.zeros(n, np.float64),
            "p_true": np.zeros((self.window, n), np.float32),  # ring buffer over epochs
            "du_sum": np.zeros(n, np.float64),
            "seen": np.zeros(n, np.int32),
        }
        self.epochs_done = 0
        self.du_windows = 0

    def update(self, epoch: int, index: NDArray[np.int64], stats: NDArray[np.float32]) -> None:
        """Record one batch: ``stats`` has the columns of :data:`STATISTICS`."""
        a = self.arrays
        loss, correct, margin, p_true, entropy, el2n, grand = stats.T
        correct = correct > 0.5
        a["seen"][index] += 1
        a["forgetting"][index] += a["correct"][index] & ~correct
        a["correct"][index] = correct
        a["learned"][index] |= correct
        a["aum_sum"][index] += margin
        a["p_true"][epoch % self.window, index] = p_true
        if epoch == self.score_epoch:
            a["el2n"][index] = el2n
            a["grand"][index] = grand
        if epoch == self.num_epochs - 1:
            a["loss"][index], a["margin"][index], a["entropy"][index] = loss, margin, entropy

    def end_epoch(self, epoch: int) -> None:
        """Close an epoch: every sample must have been seen exactly once."""
        seen = self.arrays["seen"]
        if np.any(seen != 1):
            bad = np.flatnonzero(seen != 1)
            raise RuntimeError(
                f"epoch {epoch}: samples {bad[:10].tolist()} were recorded {seen[bad[:10]].tolist()} "
                "times instead of once: the per-sample bookkeeping lost or duplicated rows"
            )
        seen[:] = 0
        if epoch + 1 >= self.window:
            self.arrays["du_sum"] += self.arrays["p_true"].std(axis=0, dtype=np.float64)
            self.du_windows += 1
        self.epochs_done = epoch + 1

    def epoch_summary(self) -> tuple[float, float]:
        """Mean training loss and accuracy of the epoch last closed (from its recorded p_true)."""
        a = self.arrays
        p_true = a["p_true"][(self.epochs_done - 1) % self.window]
        return float(np.mean(-np.log(np.clip(p_true, 1e-12, None)))), float(a["correct"].mean())

    def scores(self) -> dict[str, NDArray[np.float32]]:
        """The per-sample scores of this initialisation (after the last epoch)."""
        a = self.arrays
        forgetting = np.where(a["learned"], a["forgetting"], self.num_epochs)
        out = {
            "loss": a["loss"],
            "el2n": a["el2n"],
            "grand": a["grand"],
            "forgetting": forgetting.astype(np.float32),
            "aum": (a["aum_sum"] / max(self.epochs_done, 1)).astype(np.float32),
            "dynamic_uncertainty": (a["du_sum"] / max(self.du_windows, 1)).astype(np.float32),
            "margin": a["margin"],
            "entropy": a["entropy"],
        }
        if not np.all(np.isnan(a["grand_full"])):
            out["grand_full"] = a["grand_full"]
        return out

    def state_dict(self) -> dict[str, NDArray]:
        meta = np.array([self.epochs_done, self.du_windows], dtype=np.int64)
        return {**self.arrays, "_meta": meta}

    def load_state_dict(self, state: dict[str, NDArray]) -> None:
        for name in self.arrays:
            self.arrays[name] = np.array(state[name])
        self.epochs_done, self.du_windows = (int(v) for v in state["_meta"])
