"""Specification of the per-sample scores (hf_drop.probe.dynamics)."""

import numpy as np
import pytest
import torch

from hf_drop.probe.dynamics import STATISTICS, Dynamics, batch_statistics

COLUMN = {name: k for k, name in enumerate(STATISTICS)}


def test_batch_statistics_match_hand_computed_values():
    logits = torch.tensor([[2.0, 1.0, 0.0], [0.0, 3.0, 1.0]])
    labels = torch.tensor([0, 2])
    stats = batch_statistics(logits, labels, features=None).numpy()
    p = np.exp([2.0, 1.0, 0.0]) / np.exp([2.0, 1.0, 0.0]).sum()
    assert stats[0, COLUMN["loss"]] == pytest.approx(-np.log(p[0]), rel=1e-6)
    assert stats[0, COLUMN["correct"]] == 1 and stats[1, COLUMN["correct"]] == 0
    assert stats[0, COLUMN["margin"]] == pytest.approx(1.0)  # 2 - max(1, 0)
    assert stats[1, COLUMN["margin"]] == pytest.approx(-2.0)  # 1 - 3
    assert stats[0, COLUMN["p_true"]] == pytest.approx(p[0], rel=1e-6)
    assert stats[0, COLUMN["entropy"]] == pytest.approx(-(p * np.log(p)).sum(), rel=1e-6)
    assert stats[0, COLUMN["el2n"]] == pytest.approx(np.linalg.norm(p - [1, 0, 0]), rel=1e-6)
    assert np.isnan(stats[0, COLUMN["grand"]]), "no features, no GraNd"


def test_last_layer_grand_equals_the_autograd_gradient_norm_of_the_head():
    torch.manual_seed(0)
    head = torch.nn.Linear(5, 4)
    h = torch.randn(6, 5)
    labels = torch.tensor([0, 1, 2, 3, 0, 1])
    stats = batch_statistics(head(h), labels, features=h).numpy()
    for i in range(len(h)):
        loss = torch.nn.functional.cross_entropy(head(h[i : i + 1]), labels[i : i + 1])
        gw, gb = torch.autograd.grad(loss, [head.weight, head.bias])
        expected = torch.sqrt(gw.pow(2).sum() + gb.pow(2).sum()).item()
        assert stats[i, COLUMN["grand"]] == pytest.approx(expected, rel=1e-5)


def feed(dynamics, epoch, correct, margin=None, p_true=None):
    """One epoch in which samples 0..n-1 have the given correctness (and margin, p_true)."""
    n = len(correct)
    stats = np.zeros((n, len(STATISTICS)), np.float32)
    stats[:, COLUMN["correct"]] = correct
    stats[:, COLUMN["margin"]] = margin if margin is not None else 0.0
    stats[:, COLUMN["p_true"]] = p_true if p_true is not None else 0.5
    stats[:, COLUMN["el2n"]] = epoch + 1
    # Two "batches" in shuffled order: bookkeeping is by index, not by position.
    order = np.random.default_rng(epoch).permutation(n)
    for part in np.array_split(order, 2):
        dynamics.update(epoch, part, stats[part])
    dynamics.end_epoch(epoch)


def test_forgetting_counts_correct_to_incorrect_transitions():
    d = Dynamics(num_samples=3, num_epochs=4, score_epoch=0, window=2)
    history = np.array([[1, 0, 1, 0], [0, 0, 0, 0], [0, 1, 1, 1]])  # samples x epochs
    for epoch in range(4):
        feed(d, epoch, history[:, epoch])
    forgetting = d.scores()["forgetting"]
    assert forgetting.tolist() == [2, 4, 0], "never learned counts as the number of epochs"


def test_aum_is_the_mean_margin_over_epochs():
    d = Dynamics(num_samples=2, num_epochs=3, score_epoch=0, window=2)
    margins = np.array([[1.0, 2.0, 6.0], [-1.0, -1.0, 5.0]])
    for epoch in range(3):
        feed(d, epoch, np.ones(2), margin=margins[:, epoch])
    assert d.scores()["aum"].tolist() == pytest.approx(margins.mean(axis=1).tolist())


def test_dynamic_uncertainty_averages_the_windowed_std_of_the_true_class_probability():
    d = Dynamics(num_samples=2, num_epochs=5, score_epoch=0, window=3)
    p = np.array([[0.1, 0.5, 0.2, 0.9, 0.4], [0.5, 0.5, 0.5, 0.5, 0.5]])
    for epoch in range(5):
        feed(d, epoch, np.ones(2), p_true=p[:, epoch])
    expected = np.mean([p[:, k : k + 3].std(axis=1) for k in range(3)], axis=0)
    assert d.scores()["dynamic_uncertainty"] == pytest.approx(expected, rel=1e-5)
    assert d.du_windows == 3


def test_el2n_is_taken_at_the_score_epoch_only():
    d = Dynamics(num_samples=2, num_epochs=4, score_epoch=2, window=2)
    for epoch in range(4):
        feed(d, epoch, np.ones(2))
    assert d.scores()["el2n"].tolist() == [3.0, 3.0]  # feed writes epoch + 1


def test_a_sample_missed_or_seen_twice_in_an_epoch_is_an_error():
    d = Dynamics(num_samples=3, num_epochs=2, score_epoch=0, window=2)
    stats = np.zeros((2, len(STATISTICS)), np.float32)
    d.update(0, np.array([0, 1]), stats)
    with pytest.raises(RuntimeError, match=r"samples \[2\] were recorded \[0\] times"):
        d.end_epoch(0)
    d = Dynamics(num_samples=2, num_epochs=2, score_epoch=0, window=2)
    d.update(0, np.array([0, 1]), stats)
    d.update(0, np.array([1]), stats[:1])
    with pytest.raises(RuntimeError, match=r"samples \[1\] were recorded \[2\] times"):
        d.end_epoch(0)


def test_state_round_trips():
    d = Dynamics(num_samples=3, num_epochs=3, score_epoch=1, window=2)
    feed(d, 0, np.array([1, 0, 1]), margin=np.array([1.0, 2.0, 3.0]))
    clone = Dynamics(num_samples=3, num_epochs=3, score_epoch=1, window=2)
    clone.load_state_dict({k: np.array(v) for k, v in d.state_dict().items()})
    for epoch in (1, 2):
        feed(d, epoch, np.array([0, 1, 1]))
        feed(clone, epoch, np.array([0, 1, 1]))
    for name, values in d.scores().items():
        assert np.array_equal(values, clone.scores()[name], equal_nan=True), name
