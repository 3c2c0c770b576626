"""Chapter 09: autoregressive generative models, from FVSBN to NADE and MADE.

Data: scikit-learn's bundled 8 x 8 digits, binarized (nothing is downloaded), and a reader for the
real MNIST IDX files in a folder the reader names. Specs: the FVSBN log-likelihood, NADE's in
n passes (recomputing every prefix: obviously right, O(n^2 H)), MADE's masks, ancestral
sampling, NADE's samples by that generic sampler. Fast: NADE's running sum as one cumulative sum,
and NADE's sampler carrying its state. Models and a small training loop for
the chapter's page.
"""
import gzip
import math
import struct
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from autograder.cases.autoregressive import (SAMPLE_LINES, SAMPLE_WORK_FACTOR, SAMPLE_WORK_KIND, TASKS,  # noqa: F401
                                             WORK_FACTOR, WORK_KIND, LogitsFn, WorkCounter)
from autograder.exercise import Case, require
from autograder.tolerance import compare

# ---------------------------------------------------------------- data

DIGITS_THRESHOLD = 8  # the 8 x 8 digits hold 0..16 per pixel: 1 where >= 8


def load_digits_binary(threshold: int = DIGITS_THRESHOLD, test_fraction: float = 0.2, seed: int = 0):
    """scikit-learn's 1797 8 x 8 digits, binarized at `threshold`, split train/test by a fixed
    permutation: (train, test) float32 tensors of shape (N, 64), and their labels."""
    from sklearn.datasets import load_digits  # ships the data: nothing is downloaded

    digits = load_digits()
    x = (digits.data >= threshold).astype(np.float32)  # (1797, 64)
    perm = np.random.default_rng(seed).permutation(len(x))
    n_test = int(round(len(x) * test_fraction))
    test, train = perm[:n_test], perm[n_test:]
    return (torch.from_numpy(x[train]), torch.from_numpy(x[test]),
            torch.from_numpy(digits.target[train]), torch.from_numpy(digits.target[test]))


MNIST_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
_IDX_TYPES = {0x08: np.dtype("u1"), 0x09: np.dtype("i1"), 0x0B: np.dtype(">i2"), 0x0C: np.dtype(">i4"),
              0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}


def _expected() -> str:
    return ", ".join(f"{name}[.gz]" for name in MNIST_FILES.values())


def read_idx(path) -> np.ndarray:
    """One IDX file (raw or .gz): magic 0x0000, a type byte, a rank byte, the sizes as big-endian
    uint32, then the values. ValueError when the header or the length is wrong."""
    path = Path(path)
    raw = path.read_bytes()
    if path.suffix == ".gz":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as e:
            raise ValueError(f"{path.name} is not a valid gzip file ({e})") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_TYPES:
        raise ValueError(f"{path.name} does not start with an IDX header (0x00 0x00, a type byte, a rank byte)")
    dtype, rank = _IDX_TYPES[raw[2]], raw[3]
    if len(raw) < 4 + 4 * rank:
        raise ValueError(f"{path.name} ends inside its IDX header")
    shape = struct.unpack(f">{rank}I", raw[4:4 + 4 * rank])
    body = raw[4 + 4 * rank:]
    if len(body) != math.prod(shape) * dtype.itemsize:
        raise ValueError(f"{path.name}: the header promises shape {shape} ({math.prod(shape) * dtype.itemsize} "
                         f"bytes of values) but {len(body)} bytes follow")
    return np.frombuffer(body, dtype=dtype).reshape(shape).astype(dtype.newbyteorder("="))


def write_idx(path, array: np.ndarray) -> Path:
    """Write a uint8 array as an IDX file (gzip-compressed when the name ends in .gz)."""
    path, array = Path(path), np.ascontiguousarray(array, dtype=np.uint8)
    raw = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape) + array.tobytes()
    path.write_bytes(gzip.compress(raw) if path.suffix == ".gz" else raw)
    return path


def load_mnist(directory) -> dict[str, np.ndarray]:
    """The four MNIST IDX files from a local folder (each raw or .gz): train/test images (N, 28, 28)
    uint8 and labels (N,) uint8. FileNotFoundError or ValueError naming the four expected files."""
    directory = Path(directory)
    out = {}
    for key, name in MNIST_FILES.items():
        found = [p for p in (directory / name, directory / f"{name}.gz") if p.is_file()]
        if not found:
            raise FileNotFoundError(f"MNIST: {name}[.gz] is missing from {directory}; the folder must hold the "
                                    f"four IDX files {_expected()}")
        try:
            out[key] = read_idx(found[0])
        except ValueError as e:
            raise ValueError(f"MNIST: {e}; the folder must hold the four IDX files {_expected()}") from None
    for split in ("train", "test"):
        images, labels = out[f"{split}_images"], out[f"{split}_labels"]
        if images.ndim != 3 or labels.ndim != 1 or images.dtype != np.uint8 or len(images) != len(labels):
            raise ValueError(f"MNIST: the {split} files hold images {images.shape} {images.dtype} and labels "
                             f"{labels.shape}; expected (N, rows, cols) and (N,) uint8 in {_expected()}")
    return out


def binarize(images, threshold: int = 128) -> torch.Tensor:
    """uint8 images (N, ...) -> float32 (N, pixels) of 0/1: 1 where the pixel is >= threshold."""
    images = np.asarray(images)
    return torch.from_numpy((images.reshape(len(images), -1) >= threshold).astype(np.float32))


# ---------------------------------------------------------------- specs


def bernoulli_log_prob(logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """sum_i log Bernoulli(x_i; sigmoid(logit_i)), (B,): x log s(l) + (1 - x) log s(-l), stably."""
    return -F.binary_cross_entropy_with_logits(logits, x, reduction="none").sum(-1)


def fvsbn_logits(x, alpha, bias):
    """logit_i = bias_i + sum_{j<i} alpha[i, j] x_j, (B, n): the strict lower triangle only."""
    return bias + x @ torch.tril(alpha, -1).T


def fvsbn_log_prob_spec(x, alpha, bias):
    return bernoulli_log_prob(fvsbn_logits(x, alpha, bias), x)


def nade_logits_naive(x, W, c, V, b):
    """NADE's logits by the definition, one conditional at a time: h_i = sigmoid(c + W[:, :i] x_<i),
    recomputed from scratch for every i, O(n^2 H) per example."""
    cols = []
    for i in range(x.shape[1]):
        h = torch.sigmoid(c + x[:, :i] @ W[:, :i].T)  # (B, H)
        cols.append(b[i] + h @ V[i])  # (B,)
    return torch.stack(cols, 1) if cols else x.new_zeros(x.shape)


def nade_logits(x, W, c, V, b):
    """NADE's logits with the running sum a_i = a_{i-1} + W[:, i-1] x_{i-1}, as one exclusive
    cumulative sum over i: O(nH) per example, (B, n, H) memory."""
    steps = x[:, :, None] * W.T[None]  # (B, n, H): W[:, j] x_j
    a = c + F.pad(steps.cumsum(1)[:, :-1], (0, 0, 1, 0))  # (B, n, H): a_i = c + sum_{j<i}
    return b + (torch.sigmoid(a) * V).sum(-1)  # (B, n)


def nade_log_prob_spec(x, W, c, V, b):
    return bernoulli_log_prob(nade_logits_naive(x, W, c, V, b), x)


def made_masks_spec(n_in: int, hidden: list[int], order: torch.Tensor, seed: int) -> list[torch.Tensor]:
    """MADE's masks (Germain et al. 2015): connectivity m(k) = order[k] + 1 for inputs, drawn in
    [min(previous), n_in - 1] for hidden units; a hidden unit sees m' <= m, an output d sees m < m(d)."""
    if n_in < 1:
        raise ValueError(f"n_in must be >= 1, got {n_in}")
    order = torch.as_tensor(order)
    if order.shape != (n_in,) or not torch.equal(torch.sort(order).values, torch.arange(n_in, dtype=order.dtype)):
        raise ValueError(f"order must be a permutation of range({n_in}), got {order.tolist()}")
    if any(w < 1 for w in hidden):
        raise ValueError(f"every hidden width must be >= 1, got {list(hidden)}")
    g = torch.Generator().manual_seed(seed)
    m_in = order.long() + 1
    prev, masks = m_in, []
    for width in hidden:
        m = torch.randint(int(prev.min()), n_in, (width,), generator=g)
        masks.append((m[:, None] >= prev[None, :]).float())  # (width, previous width)
        prev = m
    masks.append((m_in[:, None] > prev[None, :]).float())  # (n_in, last width)
    return masks


def sample_spec(logits_fn, n_samples: int, order: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Ancestral sampling: n passes of logits_fn, each fixing the next entry in the order."""
    n = len(order)
    x = torch.zeros(n_samples, n)
    with torch.no_grad():
        for i in torch.argsort(torch.as_tensor(order)).tolist():
            logits = logits_fn(x)
            x[:, i] = torch.bernoulli(torch.sigmoid(logits[:, i]), generator=generator)
    return x


def nade_sample_spec(W, V, b, c, n_samples: int, generator: torch.Generator) -> torch.Tensor:
    """NADE's samples by the generic sampler: n full forward passes (each recomputing every prefix),
    drawing x_i ~ Bernoulli(sigmoid(logit_i)) for i = 0, 1, ... from `generator`, in W's dtype."""
    n = len(b)
    x = sample_spec(lambda x: nade_logits_naive(x.to(W.dtype), W, c, V, b), n_samples, torch.arange(n), generator)
    return x.to(W.dtype)


def nade_sample_fast(W, V, b, c, n_samples: int, generator: torch.Generator) -> torch.Tensor:
    """The same draws with NADE's state carried along: a = c + W[:, :i] x_<i gains one column per
    pixel, O(H) per pixel and sample instead of a forward pass."""
    H, n = W.shape
    x = W.new_zeros(n_samples, n)
    a = c.expand(n_samples, H)  # (S, H): the pre-activation for pixel 0
    for i in range(n):
        p = torch.sigmoid(b[i] + torch.sigmoid(a) @ V[i])  # (S,)
        x[:, i] = torch.bernoulli(p, generator=generator)
        a = a + x[:, i, None] * W[:, i]  # (S, H): pixel i joins the prefix of pixel i + 1
    return x


# ---------------------------------------------------------------- models for the page


class FVSBN(nn.Module):
    """Fully visible sigmoid belief net: one logistic regression per pixel on the pixels before it."""

    def __init__(self, n: int):
        super().__init__()
        self.alpha = nn.Parameter(torch.zeros(n, n))
        self.bias = nn.Parameter(torch.zeros(n))
        self.register_buffer("order", torch.arange(n))

    def logits(self, x):
        return fvsbn_logits(x, self.alpha, self.bias)

    def log_prob(self, x):
        return bernoulli_log_prob(self.logits(x), x)


class NADE(nn.Module):
    """NADE (Larochelle & Murray 2011): one hidden layer shared by all n conditionals."""

    def __init__(self, n: int, hidden: int, seed: int = 0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.W = nn.Parameter(torch.randn(hidden, n, generator=g) * 0.05)
        self.c = nn.Parameter(torch.zeros(hidden))
        self.V = nn.Parameter(torch.randn(n, hidden, generator=g) * 0.05)
        self.b = nn.Parameter(torch.zeros(n))
        self.register_buffer("order", torch.arange(n))

    def logits(self, x):
        return nade_logits(x, self.W, self.c, self.V, self.b)

    def log_prob(self, x):
        return bernoulli_log_prob(self.logits(x), x)


class MADE(nn.Module):
    """MADE (Germain et al. 2015): an MLP whose weights are masked so that output d sees only the
    inputs before d in the order. With n_masks > 1 it trains on a new order and mask set at every
    step (order-agnostic) and scores x by the average probability over the n_masks sets."""

    def __init__(self, n: int, hidden: list[int], n_masks: int = 1, seed: int = 0):
        super().__init__()
        sizes = [n, *hidden, n]
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:]))
        g = torch.Generator().manual_seed(seed)
        orders = [torch.arange(n)] + [torch.randperm(n, generator=g) for _ in range(n_masks - 1)]
        self.sets = [(o, made_masks_spec(n, hidden, o, seed + k)) for k, o in enumerate(orders)]
        self.use(0)

    def use(self, k: int) -> None:
        """Switch to order and mask set k."""
        self.k = k % len(self.sets)
        self.order, self.masks = self.sets[self.k]

    def logits(self, x):
        h = x
        for i, (layer, mask) in enumerate(zip(self.layers, self.masks)):
            h = F.linear(h, layer.weight * mask, layer.bias)
            if i < len(self.layers) - 1:
                h = F.relu(h)
        return h

    def log_prob(self, x):
        if len(self.sets) == 1 or self.training:
            return bernoulli_log_prob(self.logits(x), x)
        k0, each = self.k, []
        for k in range(len(self.sets)):
            self.use(k)
            each.append(bernoulli_log_prob(self.logits(x), x))
        self.use(k0)
        return torch.logsumexp(torch.stack(each), 0) - math.log(len(self.sets))


def bits_per_dim(nll_nats: float, n: int) -> float:
    """Average negative log-likelihood in nats per example -> bits per dimension."""
    return nll_nats / (n * math.log(2))


def nll(model, x, batch: int = 512) -> float:
    """Mean negative log-likelihood of x under model, in nats per example."""
    model.eval()
    with torch.no_grad():
        total = sum(-model.log_prob(x[i:i + batch]).sum().item() for i in range(0, len(x), batch))
    model.train()
    return total / len(x)


def train(model, train_x, test_x, epochs: int, lr: float, batch: int = 64, seed: int = 0,
          weight_decay: float = 0.0) -> dict:
    """Adam on the mean NLL; after every epoch the NLL of the whole train and test sets (nats).
    An order-agnostic MADE moves to its next order and mask set at every step."""
    g = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    curves = {"epoch": [0], "train": [nll(model, train_x)], "test": [nll(model, test_x)]}
    step, start = 0, time.perf_counter()
    for epoch in range(1, epochs + 1):
        for idx in torch.randperm(len(train_x), generator=g).split(batch):
            if isinstance(model, MADE):
                model.use(step)
            loss = -model.log_prob(train_x[idx]).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            step += 1
        if isinstance(model, MADE):
            model.use(0)
        curves["epoch"].append(epoch)
        curves["train"].append(nll(model, train_x))
        curves["test"].append(nll(model, test_x))
    curves["seconds"] = time.perf_counter() - start
    return curves


# ---------------------------------------------------------------- references and checks (the grader's process)

_DT = {"float64": torch.float64, "float32": torch.float32}


def _ref_logp(case: Case, spec, n_params: int, names) -> dict:
    x, *params, dtype = case.args
    xt = torch.tensor(x, dtype=torch.float64)
    ps = [torch.tensor(p, dtype=torch.float64, requires_grad=True) for p in params]
    out = spec(xt, *ps)
    want = {"logp": out.detach().numpy().astype(dtype), "logp_dtype": np.array(dtype),
            "inputs_unchanged": np.array(True)}
    if len(x):
        out.sum().backward()
        for p, name in zip(ps, names):
            want[f"grad_{name}"] = p.grad.numpy().astype(dtype)
    if x.shape == (256, 8):
        want["log_total"] = np.array(0.0)
    return want


def _check_logp(case: Case, got, want, names, what: str) -> None:
    require(got, want)
    if not bool(got["inputs_unchanged"]):
        raise AssertionError("changed its inputs: leave x and the parameters as they are (no in-place ops on them)")
    if str(got["logp_dtype"]) != str(want["logp_dtype"]):
        raise AssertionError(f"returns {got['logp_dtype']} for a {want['logp_dtype']} x: return log p in x's dtype")
    if got["logp"].shape != want["logp"].shape:
        raise AssertionError(f"returns shape {got['logp'].shape}, expected {want['logp'].shape}: one log p per row of x")
    if np.isfinite(want["logp"]).all() and not np.isfinite(got["logp"]).all():
        raise AssertionError(
            "log p is not finite (-inf or nan) where the logits are large: log(sigmoid(l)) underflows to log(0). "
            "Compute log sigmoid stably (F.logsigmoid, or -F.binary_cross_entropy_with_logits), never clamp")
    compare(got["logp"], want["logp"], "log p")
    if "log_total" in want:
        compare(got["log_total"], want["log_total"], f"log of the sum of p over all 2^8 inputs of this {what}")
    if "work" in want and int(got["work"]) > int(want["work"]):
        raise AssertionError(
            f"the forward did {int(got['work']):,} units of work (elements read and written plus multiply-adds) "
            f"at B = 2, n = 512, H = 32, more than {WORK_FACTOR} B n H = {int(want['work']):,}: recomputing "
            "W[:, :i] x_<i for every i costs O(n^2 H). Keep a running sum a_i = a_{i-1} + W[:, i-1] x_{i-1} "
            "(a cumulative sum over i)")
    if not len(case.args[0]):
        return
    for name in names:
        if not bool(got[f"has_grad_{name}"]) and np.any(want[f"grad_{name}"] != 0):
            raise AssertionError(f"no gradient reaches {name}: keep the whole computation in differentiable torch ops")
    if "grad_alpha" in want:
        upper = np.triu(got["grad_alpha"])
        if np.any(upper != 0):
            i, j = (int(v) for v in np.argwhere(upper != 0)[0])
            raise AssertionError(
                f"alpha[{i}, {j}] gets a nonzero gradient, but logit_i may use alpha[i, j] only for j < i: the diagonal "
                "and upper triangle must not enter the computation (mask alpha to its strict lower triangle)")
    for name in names:
        compare(got[f"grad_{name}"], want[f"grad_{name}"], f"the gradient of sum(log p) with respect to {name}")


def _ref_fvsbn(case: Case):
    return _ref_logp(case, fvsbn_log_prob_spec, 2, ("alpha", "bias"))


def _check_fvsbn(case: Case, got, want):
    _check_logp(case, got, want, ("alpha", "bias"), "FVSBN")


def _nade_log_prob_fast(x, W, c, V, b):
    return bernoulli_log_prob(nade_logits(x, W, c, V, b), x)


def _ref_nade(case: Case):
    # the spec recomputes every prefix; at n = 512 its autograd graph alone takes a second, so that
    # case takes the running sum, which tests/test_autoregressive.py holds to the spec at n = 512
    spec = _nade_log_prob_fast if case.kind == WORK_KIND else nade_log_prob_spec
    want = _ref_logp(case, spec, 4, ("W", "c", "V", "b"))
    if case.kind == WORK_KIND:
        x, w, *_ = case.args
        want["work"] = np.array(WORK_FACTOR * x.shape[0] * x.shape[1] * w.shape[0], dtype=np.int64)
    return want


def _check_nade(case: Case, got, want):
    _check_logp(case, got, want, ("W", "c", "V", "b"), "NADE")


def _ref_made(case: Case):
    n_in, hidden, order, seed = case.args
    if "raise ValueError" in case.kind:
        return {"raised": np.array("ValueError")}
    masks = made_masks_spec(n_in, list(hidden), torch.tensor(order), seed)
    want = {"count": np.array(len(masks)), "inputs_unchanged": np.array(True), "rng_unchanged": np.array(True)}
    if "same seed" in case.kind:
        want.update(same_twice=np.array(True), other_seed_differs=np.array(True))
    return want


def _check_made(case: Case, got, want):
    n_in, hidden, order, seed = case.args
    if "raised" in want:
        if str(got.get("raised")) != "ValueError":
            raise AssertionError(f"{case.kind.split('(')[0].strip()}: should raise ValueError, got "
                                 f"{got.get('raised', got.get('error'))}")
        return
    require(got, want)
    if not bool(got["inputs_unchanged"]):
        raise AssertionError("changed order: leave the inputs as they are")
    if not bool(got["rng_unchanged"]):
        raise AssertionError("changed torch's global random state: draw with torch.randint(..., generator=g) from "
                             "g = torch.Generator().manual_seed(seed)")
    if int(got["count"]) != int(want["count"]):
        raise AssertionError(f"returns {int(got['count'])} masks for {len(hidden)} hidden layers: one per layer plus "
                             "the output mask")
    widths = [n_in, *hidden, n_in]
    masks = [got[f"mask{i}"] for i in range(len(widths) - 1)]
    for i, m in enumerate(masks):
        if str(got[f"dtype{i}"]) != "float32":
            raise AssertionError(f"mask {i} has dtype {got[f'dtype{i}']}: return float32 masks")
        if m.shape != (widths[i + 1], widths[i]):
            raise AssertionError(f"mask {i} has shape {m.shape}, expected {(widths[i + 1], widths[i])} = "
                                 "(out_features, in_features), like nn.Linear.weight")
        if not np.isin(m, (0.0, 1.0)).all():
            raise AssertionError(f"mask {i} holds values other than 0 and 1")
    for i, m in enumerate(masks[:-1]):
        dead = np.flatnonzero(~m.astype(bool).any(1))
        if len(dead):
            raise AssertionError(f"hidden unit {dead[0]} of layer {i + 1} sees no unit of the layer below (a dead "
                                 "unit): draw each layer's numbers from [min of the previous layer's, n_in - 1] and "
                                 "connect where m_h >= m_prev")
    if hidden:
        reaches = masks[-1].astype(bool).any(0)
        if not reaches.all():
            raise AssertionError(f"unit {int(np.flatnonzero(~reaches)[0])} of the last hidden layer reaches no "
                                 "output (a dead unit): hidden numbers must stay below n_in")
    path = np.eye(n_in)
    for m in masks:
        path = np.minimum(m @ path, 1.0)  # (units, n_in): 1 where a path from input k exists
    before = order[None, :] < order[:, None]  # [d, k]: k comes before d in the order
    leak = (path > 0) & ~before
    if (leak & np.eye(n_in, dtype=bool)).any():
        d = int(np.flatnonzero(np.diag(leak))[0])
        raise AssertionError(f"output {d} sees input {d} itself: the output mask must be strict, m_in[d] > m_last "
                             "(the hidden masks use >=)")
    if leak.any():
        d, k = (int(v) for v in np.argwhere(leak)[0])
        raise AssertionError(f"output {d} depends on input {k}, which is not before it in the order "
                             f"(order[{k}] = {int(order[k])}, order[{d}] = {int(order[d])}): m(k) = order[k] + 1, "
                             "not its position in the order")
    if "wide" in case.kind and ((path == 0) & before).any():
        d, k = (int(v) for v in np.argwhere((path == 0) & before)[0])
        raise AssertionError(f"with 16 n hidden units per layer output {d} should see every earlier input, but "
                             f"not input {k}: draw each layer from [min of the previous layer's numbers, n_in - 1]")
    if "same seed" in case.kind:
        if not bool(got["same_twice"]):
            raise AssertionError("two calls with the same seed gave different masks: draw from "
                                 "torch.Generator().manual_seed(seed) only")
        if not bool(got["other_seed_differs"]):
            raise AssertionError("another seed gave the same masks: the draws must come from the seeded generator")


def _ref_nade_sample(case: Case):
    w, v, b, c, n_samples, seed, dtype = case.args
    dt = _DT[dtype]
    gen = torch.Generator().manual_seed(seed)
    params = [torch.tensor(a, dtype=dt) for a in (w, v, b, c)]
    generic = nade_sample_fast if case.kind == SAMPLE_WORK_KIND else nade_sample_spec  # n = 256: see _ref_nade
    x = generic(*params, n_samples, gen)
    want = {"samples": x.numpy(), "samples_dtype": np.array(dtype), "generator_state": gen.get_state().numpy(),
            "rng_unchanged": np.array(True), "inputs_unchanged": np.array(True)}
    if case.kind == SAMPLE_WORK_KIND:
        want["work"] = np.array(SAMPLE_WORK_FACTOR * n_samples * len(b) * w.shape[0], dtype=np.int64)
        want["lines"] = np.array(SAMPLE_LINES[0] * len(b) + SAMPLE_LINES[1], dtype=np.int64)
        want["finished"] = np.array(True)
    return want


def _check_nade_sample(case: Case, got, want):
    require(got, want)
    n = len(case.args[2])
    if not bool(got["inputs_unchanged"]):
        raise AssertionError("changed W, V, b or c: leave the parameters as they are")
    if not bool(got["rng_unchanged"]):
        raise AssertionError("drew from torch's global random generator: pass generator=generator to every "
                             "torch.bernoulli (page, section 5: sampling in O(nH))")
    if "work" in want:
        if not bool(got["finished"]) or int(got["lines"]) > int(want["lines"]):
            raise AssertionError(
                f"ran more than {SAMPLE_LINES[0]} n + {SAMPLE_LINES[1]} lines of Python at n = 256: the work happens "
                "outside torch (Python numbers?). One short loop step per pixel, on tensors of all samples at once")
        if int(got["work"]) > int(want["work"]):
            raise AssertionError(
                f"drew the samples with {int(got['work']):,} units of work (elements read and written plus "
                f"multiply-adds) at n_samples = 2, n = 256, H = 32, more than {SAMPLE_WORK_FACTOR} n_samples n H = "
                f"{int(want['work']):,}: recomputing c + W[:, :i] x_<i (or a whole forward pass) for every pixel "
                "costs O(n^2 H) per sample. Carry the pre-activation a and add the one column W[:, i] x_i after "
                "drawing x_i (page, section 5: sampling in O(nH))")
    if str(got["samples_dtype"]) != str(want["samples_dtype"]):
        raise AssertionError(f"returns {got['samples_dtype']} samples for {want['samples_dtype']} parameters: return "
                             "them in W's dtype")
    if got["samples"].shape != want["samples"].shape:
        raise AssertionError(f"returns shape {got['samples'].shape}, expected {want['samples'].shape} = "
                             "(n_samples, n)")
    if not np.isin(got["samples"], (0.0, 1.0)).all():
        raise AssertionError("samples hold values other than 0 and 1: draw each pixel with torch.bernoulli")
    if not np.array_equal(got["generator_state"], want["generator_state"]):
        raise AssertionError(f"the generator advanced differently from {n} calls of torch.bernoulli on n_samples "
                             "probabilities each: one call per pixel, on a (n_samples,) tensor in W's dtype, and no "
                             "other random draws")
    if "work" in want:
        return  # n = 256 in float32: the draws are compared in the other cases
    differ = np.flatnonzero((got["samples"] != want["samples"]).any(1))
    allowed = 1 if case.args[-1] == "float32" else 0  # float32: one row may flip on a rounding of p
    if len(differ) > allowed:
        col = int(np.flatnonzero(got["samples"][differ[0]] != want["samples"][differ[0]])[0])
        raise AssertionError(
            f"{len(differ)} of {len(got['samples'])} samples differ from the n-pass sampler's draws with the same "
            f"generator, first at pixel {col} of a sample: pixel i is drawn from sigmoid(b_i + V_i . sigmoid(a_i)) "
            "where a_i = c + W[:, :i] x_<i must already hold the column of every earlier pixel, so add W[:, i] x_i "
            "right after drawing x_i, before pixel i + 1 (page, section 5: sampling in O(nH))")


EXERCISES = {
    "fvsbn_log_prob": TASKS["fvsbn_log_prob"].graded(_ref_fvsbn, _check_fvsbn),
    "nade_log_prob": TASKS["nade_log_prob"].graded(_ref_nade, _check_nade),
    "made_masks": TASKS["made_masks"].graded(_ref_made, _check_made),
    "nade_sample": TASKS["nade_sample"].graded(_ref_nade_sample, _check_nade_sample),
}
