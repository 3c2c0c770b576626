"""Chapter 09 references: the data loaders (the 8 x 8 digits, and MNIST's IDX files written here),
the specs against their definitions, the fast NADE against the naive one at n = 512, MADE's
masks and model, sampling, the work counter, and every check failing when it should, with a
message that teaches and shows no expected values."""
import gzip

import numpy as np
import pytest
import torch

from autograder import verifier
from autograder.cases import autoregressive as C
from autograder.reference import autoregressive as R



def _failure(name, fn, seed=0):
    ex = R.EXERCISES[name]
    cases = ex.cases(np.random.default_rng(seed))
    return verifier._failures(ex, cases, [verifier._run(ex, fn, c) for c in cases])


# ---------------------------------------------------------------- data


def test_digits_are_binary_and_split_by_a_fixed_permutation():
    train, test, y_train, y_test = R.load_digits_binary()
    assert train.shape == (1438, 64) and test.shape == (359, 64) and train.dtype == torch.float32
    assert set(torch.cat([train, test]).unique().tolist()) == {0.0, 1.0}
    assert len(y_train) == 1438 and set(y_test.tolist()) <= set(range(10))
    again = R.load_digits_binary()
    assert torch.equal(again[0], train) and torch.equal(again[1], test)


def _write_mnist(folder, n_train=5, n_test=3, gz=False):
    rng = np.random.default_rng(0)
    suffix = ".gz" if gz else ""
    data = {"train_images": rng.integers(0, 256, (n_train, 28, 28)), "train_labels": rng.integers(0, 10, n_train),
            "test_images": rng.integers(0, 256, (n_test, 28, 28)), "test_labels": rng.integers(0, 10, n_test)}
    for key, name in R.MNIST_FILES.items():
        R.write_idx(folder / f"{name}{suffix}", data[key])
    return data


@pytest.mark.parametrize("gz", [False, True])
def test_mnist_idx_files_round_trip(tmp_path, gz):
    data = _write_mnist(tmp_path, gz=gz)
    got = R.load_mnist(tmp_path)
    for key, value in data.items():
        assert got[key].dtype == np.uint8 and np.array_equal(got[key], value.astype(np.uint8))
    x = R.binarize(got["train_images"])
    assert x.shape == (5, 784) and x.dtype == torch.float32
    assert torch.equal(x, torch.from_numpy((data["train_images"].reshape(5, -1) >= 128).astype(np.float32)))


def test_mnist_names_the_four_files_when_one_is_missing_or_malformed(tmp_path):
    _write_mnist(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(FileNotFoundError) as e:
        R.load_mnist(tmp_path)
    assert all(name in str(e.value) for name in R.MNIST_FILES.values())
    raw = (tmp_path / "train-images-idx3-ubyte").read_bytes()
    (tmp_path / "t10k-labels-idx1-ubyte").write_bytes(raw[:-7])  # truncated
    with pytest.raises(ValueError) as e:
        R.load_mnist(tmp_path)
    assert "t10k-labels-idx1-ubyte" in str(e.value) and "train-labels-idx1-ubyte" in str(e.value)
    (tmp_path / "t10k-labels-idx1-ubyte").write_bytes(b"not an idx file")
    with pytest.raises(ValueError, match="IDX header"):
        R.load_mnist(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte").unlink()
    (tmp_path / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(raw))  # images where labels belong
    with pytest.raises(ValueError, match="expected"):
        R.load_mnist(tmp_path)


# ---------------------------------------------------------------- specs and models


def _every(n):
    return torch.from_numpy(C.all_binary(n))


def test_fvsbn_spec_is_a_distribution_that_ignores_the_upper_triangle():
    g = torch.Generator().manual_seed(0)
    alpha, bias = torch.randn(8, 8, dtype=torch.float64, generator=g), torch.randn(8, dtype=torch.float64, generator=g)
    logp = R.fvsbn_log_prob_spec(_every(8), alpha, bias)
    assert abs(torch.logsumexp(logp, 0).item()) < 1e-12
    assert torch.equal(logp, R.fvsbn_log_prob_spec(_every(8), torch.tril(alpha, -1) + torch.triu(alpha * 9), bias))
    big = R.fvsbn_log_prob_spec(_every(8).float(), alpha.float() * 500, bias.float() * 500)
    assert torch.isfinite(big).all()


def test_fast_nade_matches_the_naive_spec_at_n_512_with_gradients():
    g = torch.Generator().manual_seed(1)
    x = torch.bernoulli(torch.full((2, 512), 0.3, dtype=torch.float64), generator=g)
    params = [(torch.randn(*s, dtype=torch.float64, generator=g) * 0.3).requires_grad_()
              for s in ((32, 512), (32,), (512, 32), (512,))]
    slow = R.nade_log_prob_spec(x, *params)
    slow_grads = torch.autograd.grad(slow.sum(), params)
    fast = R._nade_log_prob_fast(x, *params)
    fast_grads = torch.autograd.grad(fast.sum(), params)
    assert torch.allclose(fast, slow, rtol=1e-12, atol=1e-9)
    assert all(torch.allclose(a, b, atol=1e-9) for a, b in zip(fast_grads, slow_grads))


def test_work_counter_counts_elements_and_multiply_adds():
    a, b = torch.randn(4, 5), torch.randn(5, 6)
    with C.WorkCounter() as w:
        a @ b
        a.T  # a view: free
    assert w.macs == 4 * 5 * 6 and w.elements == 20 + 30 + 24
    x, params = torch.ones(2, 512), [torch.randn(*s) for s in ((32, 512), (32,), (512, 32), (512,))]
    limit = C.WORK_FACTOR * 2 * 512 * 32
    with C.WorkCounter() as fast:
        R._nade_log_prob_fast(x, *params)
    with C.WorkCounter() as slow:
        R.nade_log_prob_spec(x, *params)
    assert fast.work < limit / 2 and slow.work > 4 * limit


def test_made_masks_spec_is_autoregressive_and_complete_when_wide():
    order = torch.tensor([3, 0, 4, 1, 2])
    before = (order[None, :] < order[:, None]).numpy()
    for seed in range(10):
        masks = R.made_masks_spec(5, [6, 4], order, seed)
        path = np.eye(5)
        for m in masks:
            path = np.minimum(m.numpy() @ path, 1)
        assert not ((path > 0) & ~before).any()
        assert all(m.sum(1).min() > 0 for m in masks[:-1]) and masks[-1].sum(0).min() > 0
    path = np.eye(5)
    for m in R.made_masks_spec(5, [80, 80], order, 0):
        path = np.minimum(m.numpy() @ path, 1)
    assert (path[before] > 0).all()
    for bad in ((0, [], torch.arange(0)), (3, [], torch.tensor([0, 0, 1])), (3, [0], torch.arange(3))):
        with pytest.raises(ValueError):
            R.made_masks_spec(*bad, 0)


@pytest.mark.parametrize("model", [R.FVSBN(8), R.NADE(8, 5, seed=2), R.MADE(8, [16, 16], n_masks=3, seed=4)])
def test_models_are_normalised_and_autoregressive_in_their_order(model):
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0, 0.8)
    model.eval()
    with torch.no_grad():
        assert abs(torch.logsumexp(model.log_prob(_every(8).float()), 0).item()) < 1e-4
    for k in range(len(getattr(model, "sets", [None]))):
        if isinstance(model, R.MADE):
            model.use(k)
        jac = torch.autograd.functional.jacobian(lambda v: model.logits(v[None])[0], torch.rand(8))  # (8, 8)
        later_or_self = model.order[None, :] >= model.order[:, None]  # [d, k]: k not before d
        assert torch.all(jac[later_or_self] == 0)


def test_sample_spec_follows_the_order_and_the_generator():
    order = torch.tensor([2, 0, 1])
    fn = C.LogitsFn(np.zeros((3, 3)), np.full(3, 60.0), torch.float32)
    x = R.sample_spec(fn, 2, order, torch.Generator().manual_seed(0))
    assert torch.all(x == 1) and fn.calls == 3
    assert [s.tolist() for s in fn.seen] == [[0, 0, 0], [0, 1, 0], [0, 1, 1]]
    a = R.sample_spec(C.LogitsFn(np.zeros((3, 3)), np.zeros(3), torch.float32), 50, order, torch.Generator().manual_seed(3))
    b = R.sample_spec(C.LogitsFn(np.zeros((3, 3)), np.zeros(3), torch.float32), 50, order, torch.Generator().manual_seed(3))
    assert torch.equal(a, b)


def test_nade_sampler_with_its_state_draws_what_the_n_pass_sampler_draws():
    g = torch.Generator().manual_seed(2)
    params = [torch.randn(*s, dtype=torch.float64, generator=g) * 0.3 for s in ((32, 128), (128, 32), (128,), (32,))]
    slow_gen, fast_gen = torch.Generator().manual_seed(9), torch.Generator().manual_seed(9)
    slow = R.nade_sample_spec(*params, 3, slow_gen)
    fast = R.nade_sample_fast(*params, 3, fast_gen)
    assert torch.equal(slow, fast) and slow.dtype == torch.float64
    assert torch.equal(slow_gen.get_state(), fast_gen.get_state())
    with C.WorkCounter() as w:
        R.nade_sample_fast(*(p.float() for p in params), 2, torch.Generator())
    assert w.work < C.SAMPLE_WORK_FACTOR * 2 * 128 * 32 / 3


def test_training_lowers_the_test_nll():
    train, test, _, _ = R.load_digits_binary()
    curves = R.train(R.FVSBN(64), train[:400], test[:100], epochs=2, lr=0.05)
    assert curves["test"][-1] < curves["test"][0] - 5 and len(curves["train"]) == 3
    assert R.bits_per_dim(64 * np.log(2), 64) == pytest.approx(1.0)


@pytest.mark.parametrize("name", list(R.EXERCISES))
def test_cases_are_deterministic_per_seed(name):
    one, two = R.EXERCISES[name].cases(np.random.default_rng(5)), R.EXERCISES[name].cases(np.random.default_rng(5))
    assert [c.kind for c in one] == [c.kind for c in two]
    for c1, c2 in zip(one, two):
        for a, b in zip(c1.args, c2.args):
            np.testing.assert_array_equal(a, b)


# ---------------------------------------------------------------- the checks pass the specs and fail the wrong


def _naive_log_sigmoid(x, alpha, bias):
    p = torch.sigmoid(bias + x @ torch.tril(alpha, -1).T)
    return (x * torch.log(p) + (1 - x) * torch.log(1 - p)).sum(-1)


def _made_ge(n_in, hidden, order, seed):
    """The spec with >= in the output mask too."""
    g, m_in = torch.Generator().manual_seed(seed), order + 1
    prev, masks = m_in, []
    for w in hidden:
        m = torch.randint(int(prev.min()), n_in, (w,), generator=g)
        masks.append((m[:, None] >= prev[None, :]).float())
        prev = m
    return masks + [(m_in[:, None] >= prev[None, :]).float()]


def _nade_sample_global(W, V, b, c, n_samples, generator):
    return R.nade_sample_fast(W, V, b, c, n_samples, None)


def _nade_sample_recompute(W, V, b, c, n_samples, generator):
    """Right draws, O(n^2 H): c + W[:, :i] x_<i from the whole prefix at every pixel."""
    x = W.new_zeros(n_samples, W.shape[1])
    for i in range(W.shape[1]):
        h = torch.sigmoid(c + x[:, :i] @ W[:, :i].T)
        x[:, i] = torch.bernoulli(torch.sigmoid(b[i] + h @ V[i]), generator=generator)
    return x


def _nade_sample_late(W, V, b, c, n_samples, generator):
    """The state updated after the draw: pixel i sees x_<(i-1) only."""
    H, n = W.shape
    x, a = W.new_zeros(n_samples, n), c.expand(n_samples, H)
    for i in range(n):
        x[:, i] = torch.bernoulli(torch.sigmoid(b[i] + torch.sigmoid(a) @ V[i]), generator=generator)
        if i:
            a = a + x[:, i - 1, None] * W[:, i - 1]
    return x


def test_the_specs_pass_their_own_checks():
    assert _failure("fvsbn_log_prob", R.fvsbn_log_prob_spec) is None
    assert _failure("nade_log_prob", R._nade_log_prob_fast) is None
    assert _failure("made_masks", R.made_masks_spec) is None
    assert _failure("nade_sample", R.nade_sample_fast) is None


@pytest.mark.parametrize("name,fn,says", [
    ("fvsbn_log_prob", _naive_log_sigmoid, "not finite"),
    ("fvsbn_log_prob", lambda x, a, b: R.fvsbn_log_prob_spec(x, a, b) + (torch.triu(a) - torch.triu(a).detach()).sum(),
     "nonzero gradient"),
    ("fvsbn_log_prob", lambda x, a, b: R.fvsbn_log_prob_spec(x, a, b).float(), "dtype"),
    ("nade_log_prob", R.nade_log_prob_spec, "units of work"),
    ("nade_log_prob", lambda x, W, c, V, b: R._nade_log_prob_fast(x, W.detach(), c, V, b), "no gradient reaches W"),
    ("made_masks", _made_ge, "sees input"),
    ("made_masks", lambda n, h, o, s: R.made_masks_spec(n, h, torch.argsort(o), s), "not before it in the order"),
    ("nade_sample", _nade_sample_global, "global random generator"),
    ("nade_sample", _nade_sample_late, "differ from the n-pass sampler"),
    ("nade_sample", _nade_sample_recompute, "units of work"),
])
def test_checks_catch_wrong_answers_and_say_why(name, fn, says):
    failure = _failure(name, fn)
    assert failure is not None and says in failure, failure


def test_failures_do_not_show_expected_values():
    x, alpha, bias = torch.ones(1, 3), torch.zeros(3, 3), torch.tensor([0.3, -1.2, 2.5])
    want = R.fvsbn_log_prob_spec(x, alpha, bias).item()
    failure = _failure("fvsbn_log_prob", lambda x, a, b: R.fvsbn_log_prob_spec(x, a, b) + 0.5)
    assert failure and f"{want:.3f}" not in failure and "log p: max |err|" in failure
