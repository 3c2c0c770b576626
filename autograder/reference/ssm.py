"""Chapter 10: state space models, from HiPPO to Mamba's selective scan.

Specs: HiPPO-LegS from its formula; the discretisations from `scipy.signal.cont2discrete`; the
convolution and the selective scan as plain sequential recurrences in float64, obviously right and
never shown to learners as a method. Fast: the convolution by FFT at length >= 2L, and the selective
scan as a Triton kernel (one program per (batch, channel), chunks of CHUNK time steps scanned with
`tl.associative_scan`, the state carried from chunk to chunk in registers).
"""
import numpy as np
import torch

from autograder.device import DEVICE  # noqa: F401  (sets TRITON_INTERPRET before triton loads)
import triton  # noqa: E402
import triton.language as tl  # noqa: E402

from autograder import rules
from autograder.cases.ssm import (CONV_COST, CONV_OPS, CONV_U_OPS, LIBRARY_SCANS, MAX_CHUNK, MAX_OPS_AROUND_KERNEL,
                                  MIN_CHUNK, SCAN_COST, SSD_COST, TASKS, chunk_loop_budget, scan_inputs, scan_line_budget,
                                  scan_op_budget, ssd_line_budget, ssd_op_budget, ssd_work_budget)
from autograder.exercise import Case, check_outputs, require

HOST_LINES = 100  # Python lines a Triton wrapper may run: allocate, launch, return

# ---------------------------------------------------------------- specs


def hippo_legs(n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """HiPPO-LegS (Gu et al. 2020): A[i, k] = -sqrt(2i+1) sqrt(2k+1) below the diagonal, -(i+1) on
    it, 0 above; B[i] = sqrt(2i+1). float64."""
    if n < 1:
        raise ValueError(f"N must be >= 1, got {n}")
    q = torch.sqrt(2 * torch.arange(n, dtype=torch.float64) + 1)  # (N,)
    a = -torch.tril(torch.outer(q, q), -1) - torch.diag(torch.arange(1, n + 1, dtype=torch.float64))
    return a, q


def discretize(a: torch.Tensor, b: torch.Tensor, dt: float, method: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(Abar, Bbar) of x' = Ax + Bu held constant over steps of dt: "zoh" through the exponential of
    the block matrix [[A, B], [0, 0]] dt (no inverse of A), "bilinear" by the trapezoid rule."""
    n = a.shape[0]
    if method == "zoh":
        m = torch.zeros(n + 1, n + 1, dtype=a.dtype)
        m[:n, :n], m[:n, n] = a * dt, b * dt
        e = torch.linalg.matrix_exp(m)  # [[exp(A dt), int_0^dt exp(A s) ds B], [0, 1]]
        return e[:n, :n], e[:n, n]
    if method == "bilinear":
        eye = torch.eye(n, dtype=a.dtype)
        left = eye - dt / 2 * a
        return torch.linalg.solve(left, eye + dt / 2 * a), torch.linalg.solve(left, dt * b)
    raise ValueError(f"method must be 'zoh' or 'bilinear', got {method!r}")


def cont2discrete(a: np.ndarray, b: np.ndarray, dt: float, method: str) -> tuple[np.ndarray, np.ndarray]:
    """SciPy's discretisation of (A, B), the grader's ground truth."""
    from scipy.signal import cont2discrete as c2d

    n = a.shape[0]
    abar, bbar, *_ = c2d((a, b[:, None], np.zeros((1, n)), np.zeros((1, 1))), dt, method=method)
    return abar, bbar[:, 0]


def ssm_recurrent(u: torch.Tensor, abar, bbar, c) -> torch.Tensor:
    """The spec of the LTI convolution: x_l = Abar x_{l-1} + Bbar u_l, y_l = C x_l, from x_{-1} = 0."""
    x = torch.zeros(u.shape[0], abar.shape[0], dtype=torch.float64)  # (batch, N)
    ys = []
    for l in range(u.shape[-1]):
        x = x @ abar.T + u[:, l, None] * bbar
        ys.append(x @ c)
    return torch.stack(ys, -1) if ys else torch.zeros_like(u)


def ssm_kernel(abar, bbar, c, length: int) -> torch.Tensor:
    """K = (C Bbar, C Abar Bbar, ..., C Abar^{L-1} Bbar), doubling the columns Abar^l Bbar."""
    cols, power = bbar[:, None], abar  # (N, k) holds Abar^0..k-1 Bbar; power = Abar^k
    while cols.shape[1] < length:
        cols = torch.cat([cols, power @ cols], 1)
        power = power @ power
    return c @ cols[:, :length]


def ssm_conv_fft(u: torch.Tensor, abar, bbar, c, length: int) -> torch.Tensor:
    """y = K * u, causal, by FFT at n_fft >= 2L (zero padding: no wrap-around). (batch, L)."""
    k = ssm_kernel(abar, bbar, c, length)
    n_fft = 2 * length
    return torch.fft.irfft(torch.fft.rfft(u, n_fft) * torch.fft.rfft(k, n_fft), n_fft)[..., :length]


def dplr_powers_kernel(lam, p, q, b, c, dt: float, length: int) -> torch.Tensor:
    """The naive S4 kernel: A = diag(Lambda) - P Q^*, bilinear (Abar, Bbar), and
    K_l = C Abar^l Bbar for l < L by L matrix-vector steps. complex128, (L,)."""
    a = torch.diag(lam) - torch.outer(p, q.conj())  # (N, N)
    eye = torch.eye(lam.shape[0], dtype=a.dtype)
    left = eye - dt / 2 * a
    abar, v = torch.linalg.solve(left, eye + dt / 2 * a), torch.linalg.solve(left, dt * b)  # Bbar
    ks = []
    for _ in range(length):
        ks.append(c @ v)
        v = abar @ v
    return torch.stack(ks)


def s4_kernel_fft(lam, p, q, b, c, dt: float, length: int) -> torch.Tensor:
    """S4's kernel without powers of A (Gu, Goel and Re 2022, Algorithm 1): the generating function
    truncated at L, evaluated at the L roots of unity through the Cauchy kernel and the Woodbury
    identity, then one inverse FFT of length L. complex128, (L,)."""
    n = lam.shape[0]
    a = torch.diag(lam) - torch.outer(p, q.conj())
    eye = torch.eye(n, dtype=a.dtype)
    abar = torch.linalg.solve(eye - dt / 2 * a, eye + dt / 2 * a)
    c_t = c - c @ torch.linalg.matrix_power(abar, length)  # C (I - Abar^L): squaring, log2 L products
    z = torch.exp(-2j * torch.pi * torch.arange(length, dtype=torch.float64) / length)  # (L,) roots of unity
    g = (2 / dt) * (1 - z) / (1 + z)  # (L,)
    r = 1 / (g[:, None] - lam[None, :])  # (L, N): the Cauchy kernel
    k00, k01 = r @ (c_t * b), r @ (c_t * p)
    k10, k11 = r @ (q.conj() * b), r @ (q.conj() * p)
    khat = 2 / (1 + z) * (k00 - k01 * k10 / (1 + k11))  # Woodbury
    return torch.fft.ifft(khat, length)


def selective_scan_spec(u, delta, a, b, c, d) -> torch.Tensor:
    """Mamba's selective scan in float64, one step at a time: x_t = exp(delta_t A) x_{t-1} +
    delta_t B_t u_t, y_t = <C_t, x_t> + D u_t. u, delta (b, d, L); A (d, n); B, C (b, n, L); D (d,)."""
    u, delta, a, b, c, d = (t.detach().cpu().double() for t in (u, delta, a, b, c, d))
    x = torch.zeros(u.shape[0], u.shape[1], a.shape[1], dtype=torch.float64)  # (b, d, n)
    ys = []
    for t in range(u.shape[-1]):
        dt = delta[:, :, t, None]  # (b, d, 1)
        x = torch.exp(dt * a) * x + dt * b[:, None, :, t] * u[:, :, t, None]
        ys.append((x * c[:, None, :, t]).sum(-1) + d * u[:, :, t])
    return torch.stack(ys, -1)  # (b, d, L)


def scan_doubling(a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Inclusive scan of (a_t, b_t) under (a1, b1) o (a2, b2) = (a1 a2, a2 b1 + b2) along the last
    axis in ceil(log2 L) vectorised steps (Hillis and Steele 1986): x_t = b-part of the prefix."""
    a, b = a.clone(), b.clone()
    shift = 1
    while shift < a.shape[-1]:
        a_prev = torch.nn.functional.pad(a[..., :-shift], (shift, 0), value=1.0)  # identity (1, 0)
        b_prev = torch.nn.functional.pad(b[..., :-shift], (shift, 0), value=0.0)
        a, b = a_prev * a, a * b_prev + b
        shift *= 2
    return a, b


def ssd_spec(x, a, b, c) -> torch.Tensor:
    """Mamba-2's scalar-decay SSM one step at a time in float64: h_t = a_t h_{t-1} + B_t x_t^T (an
    (n, p) state), y_t = C_t^T h_t. x (b, L, p); a (b, L); B, C (b, L, n). Returns (b, L, p)."""
    x, a, b, c = (t.detach().cpu().double() for t in (x, a, b, c))
    h = torch.zeros(x.shape[0], b.shape[-1], x.shape[-1], dtype=torch.float64)  # (b, n, p)
    ys = []
    for t in range(x.shape[1]):
        h = a[:, t, None, None] * h + b[:, t, :, None] * x[:, t, None, :]
        ys.append((c[:, t, :, None] * h).sum(1))  # (b, p)
    return torch.stack(ys, 1) if ys else torch.zeros_like(x)


def ssd_dense(x, a, b, c) -> torch.Tensor:
    """The same map as one masked attention, y = (M o C B^T) x with the 1-semiseparable mask
    M[t, s] = a_{s+1} ... a_t for s <= t (0 above the diagonal), in float64: O(L^2) memory."""
    x, a, b, c = (t.detach().cpu().double() for t in (x, a, b, c))
    logs = torch.log(a).cumsum(-1)  # (b, L): sum of log a up to t
    gap = logs[:, :, None] - logs[:, None, :]  # (b, L, L): log of a_{s+1} ... a_t
    causal = torch.ones(gap.shape[-2:], dtype=torch.bool).tril()
    mask = torch.exp(gap.masked_fill(~causal, float("-inf")))
    return torch.einsum("bts,bts,bsp->btp", mask, c @ b.transpose(1, 2), x)


def ssd_chunks(x, a, b, c, chunk: int) -> torch.Tensor:
    """The chunked SSD (Dao and Gu 2024, section 6): masked matmuls inside each chunk of `chunk` steps,
    each chunk's final state from its inputs, one pass over the chunks carrying the state, and the
    carried state read out inside each chunk. float32 like the inputs; no (L, L) tensor."""
    bsz, length, p = x.shape
    n, t_len = b.shape[-1], chunk
    pad = -length % t_len
    if pad:  # pad with steps that change nothing: a = 1, x = B = C = 0
        x, b, c = (torch.nn.functional.pad(v, (0, 0, 0, pad)) for v in (x, b, c))
        a = torch.nn.functional.pad(a, (0, pad), value=1.0)
    k = x.shape[1] // t_len
    x, b, c = x.reshape(bsz, k, t_len, p), b.reshape(bsz, k, t_len, n), c.reshape(bsz, k, t_len, n)
    la = torch.log(a).reshape(bsz, k, t_len).cumsum(-1)  # (b, k, T): log decay from the chunk start
    causal = torch.ones(t_len, t_len, dtype=torch.bool, device=x.device).tril()
    inner = torch.exp((la[..., :, None] - la[..., None, :]).masked_fill(~causal, float("-inf")))  # (b, k, T, T)
    y = torch.einsum("bkts,bktn,bksn,bksp->bktp", inner, c, b, x)  # within each chunk
    to_end = torch.exp(la[..., -1:] - la)  # (b, k, T): decay from step s to the chunk's end
    states = torch.einsum("bks,bksn,bksp->bknp", to_end, b, x)  # each chunk's own final state
    h = torch.zeros(bsz, n, p, dtype=x.dtype, device=x.device)
    carried = []
    for j in range(k):  # k = ceil(L / T) sequential steps
        carried.append(h)
        h = torch.exp(la[:, j, -1, None, None]) * h + states[:, j]
    y = y + torch.einsum("bkt,bktn,bknp->bktp", torch.exp(la), c, torch.stack(carried, 1))
    return y.reshape(bsz, k * t_len, p)[:, :length]


# ---------------------------------------------------------------- fast: the Triton selective scan


@triton.jit
def _combine(a1, b1, a2, b2):
    """(a1, b1) o (a2, b2) = (a1 a2, a2 b1 + b2): first step 1, then step 2."""
    return a1 * a2, a2 * b1 + b2


@triton.jit
def selective_scan_kernel(
    u_ptr,  # *f32 (b, d, L), contiguous
    delta_ptr,  # *f32 (b, d, L), contiguous
    a_ptr,  # *f32 (d, n), contiguous
    b_ptr,  # *f32 (b, n, L), contiguous
    c_ptr,  # *f32 (b, n, L), contiguous
    d_ptr,  # *f32 (d,)
    y_ptr,  # *f32 (b, d, L), written
    D,  # int: channels d
    N,  # int: state size n
    L,  # int: sequence length
    N_BLOCK: tl.constexpr,  # next power of two >= n
    CHUNK: tl.constexpr,  # time steps per chunk, a power of two in [16, 256]
):
    pid = tl.program_id(0)  # one program per (batch, channel)
    bi, di = pid // D, pid % D
    n = tl.arange(0, N_BLOCK)  # (N_BLOCK,)
    n_ok = n < N
    a = tl.load(a_ptr + di * N + n, mask=n_ok, other=0.0)  # (N_BLOCK,)
    skip = tl.load(d_ptr + di)
    row = (bi * D + di) * L  # offset of this (batch, channel) in u, delta, y
    x = tl.zeros((N_BLOCK,), dtype=tl.float32)  # the state carried across chunks
    for start in range(0, L, CHUNK):
        t = start + tl.arange(0, CHUNK)  # (CHUNK,)
        t_ok = t < L
        u = tl.load(u_ptr + row + t, mask=t_ok, other=0.0)
        dt = tl.load(delta_ptr + row + t, mask=t_ok, other=0.0)  # 0 past L: (1, 0), the identity
        nt = bi * N * L + n[:, None] * L + t[None, :]  # (N_BLOCK, CHUNK) offsets into B and C
        ok = n_ok[:, None] & t_ok[None, :]
        bt = tl.load(b_ptr + nt, mask=ok, other=0.0)
        ct = tl.load(c_ptr + nt, mask=ok, other=0.0)
        da = tl.exp(dt[None, :] * a[:, None])  # (N_BLOCK, CHUNK): exp(delta_t A)
        dbu = (dt * u)[None, :] * bt  # delta_t B_t u_t
        pa, pb = tl.associative_scan((da, dbu), axis=1, combine_fn=_combine)  # prefixes inside the chunk
        xs = pa * x[:, None] + pb  # (N_BLOCK, CHUNK): the carried state enters through the a-prefix
        y = tl.sum(ct * xs, axis=0) + skip * u  # (CHUNK,)
        tl.store(y_ptr + row + t, y, mask=t_ok)
        x = tl.sum(tl.where(t[None, :] == start + CHUNK - 1, xs, 0.0), axis=1)  # last column (identity past L)


def selective_scan_triton(u, delta, a, b, c, d, chunk: int = 256) -> torch.Tensor:
    """The selective scan with the chunked Triton kernel; float32 (b, d, L)."""
    bsz, dim, length = u.shape
    n = a.shape[1]
    y = torch.empty(bsz, dim, length, dtype=torch.float32, device=u.device)
    if bsz * dim * length == 0:
        return y
    selective_scan_kernel[(bsz * dim,)](
        *(t.float().contiguous() for t in (u, delta, a, b, c, d)), y, dim, n, length,
        N_BLOCK=triton.next_power_of_2(n), CHUNK=max(MIN_CHUNK, min(chunk, triton.next_power_of_2(length))),
    )
    return y


def selective_scan_rounds(u, delta, a, b, c, d) -> torch.Tensor:
    """The selective scan as Algorithm 1 in PyTorch: the pairs (exp(delta A), delta B u), all
    (b, d, n, L) of them, scanned in ceil(log2 L) rounds of `scan_doubling`; float32."""
    step = delta[:, :, None, :]  # (b, d, 1, L)
    _, x = scan_doubling(torch.exp(step * a[None, :, :, None]), step * b[:, None] * u[:, :, None, :])
    return (x * c[:, None]).sum(2) + d[:, None] * u


def selective_scan_loop(u, delta, a, b, c, d) -> torch.Tensor:
    """The sequential float32 loop on the inputs' device: one step of torch ops per time step."""
    x = torch.zeros(u.shape[0], u.shape[1], a.shape[1], device=u.device)  # (b, d, n)
    ys = []
    for t in range(u.shape[-1]):
        dt = delta[:, :, t, None]
        x = torch.exp(dt * a) * x + dt * b[:, None, :, t] * u[:, :, t, None]
        ys.append((x * c[:, None, :, t]).sum(-1))
    return torch.stack(ys, -1) + d[:, None] * u


# ---------------------------------------------------------------- references and checks (the grader's process)


def _expected_error(case: Case, got, want) -> bool:
    """For the cases that must raise: compare the exception's name; True when this case was one."""
    if "raised" not in want:
        return False
    if str(got.get("raised")) != str(want["raised"]):
        shown = got.get("raised", got.get("error", "nothing"))
        raise AssertionError(f"should raise {want['raised']} ({case.kind}); it gave {shown}")
    return True


def _ref_hippo(case: Case):
    (n,) = case.args
    if n < 1:
        return {"raised": np.array("ValueError")}
    a, b = hippo_legs(n)
    return {"A": a.numpy(), "B": b.numpy()}


def _check_hippo(case: Case, got, want):
    if _expected_error(case, got, want):
        return
    require(got, want)
    for key in ("A", "B"):
        if got[key].dtype != np.float64:
            raise AssertionError(f"{key} has dtype {got[key].dtype}; HiPPO's matrices are float64")
    check_outputs(case, got, want)


def _check_unchanged(got) -> None:
    if "inputs_unchanged" in got and not bool(got["inputs_unchanged"]):
        raise AssertionError("modifies its inputs; work on new tensors (an in-place op such as mul_ or x[...] = "
                             "writes into the caller's tensor)")


def _ref_discretize(case: Case):
    a, b, dt, method = case.args
    if method not in ("zoh", "bilinear"):
        return {"raised": np.array("ValueError")}
    abar, bbar = cont2discrete(a, b, dt, method)
    return {"Abar": abar, "Bbar": bbar}


def _check_discretize(case: Case, got, want):
    if _expected_error(case, got, want):
        return
    require(got, want)
    _check_unchanged(got)
    check_outputs(case, {k: got[k] for k in want}, want)


def _ref_conv(case: Case):
    u, abar, bbar, c, length = case.args
    if "ValueError" in case.kind:
        return {"raised": np.array("ValueError")}
    y = ssm_recurrent(*(torch.from_numpy(x) for x in (u, abar, bbar, c)))
    return {"y": y.numpy()}


def _check_conv(case: Case, got, want):
    if _expected_error(case, got, want):
        return
    require(got, want)
    _check_unchanged(got)
    check_outputs(case, {"y": got["y"]}, want)
    if CONV_COST in case.kind:
        length = case.args[-1]
        if not bool(got.get("used_fft", False)):
            raise AssertionError("ran no FFT op; compute the convolution with torch.fft (rfft, multiply, irfft), "
                                 "O(L log L), not by a direct sum over all pairs of steps")
        if int(got.get("largest_out", 0)) >= length * length:
            raise AssertionError(f"an op produced {int(got['largest_out'])} elements, L^2 or more at L = {length}: "
                                 "an O(L^2) intermediate (a Toeplitz matrix of K?); the FFT needs only O(L) memory")
        convs = sorted({str(n) for n in np.atleast_1d(got.get("op_names", []))} & CONV_OPS)
        if convs:
            raise AssertionError(f"ran {convs[0]}: a library convolution; compute it with torch.fft (section 3)")
        if int(got.get("input_ops", 0)) > CONV_U_OPS:
            raise AssertionError(f"{int(got['input_ops'])} torch ops read u or values computed from it at L = {length} "
                                 f"(at most {CONV_U_OPS}): u goes through one FFT convolution, y = irfft(rfft(u) "
                                 "rfft(K)), not a step per time step (the recurrence) or a sum per output block "
                                 "(see section 3)")


def _ref_scan(case: Case):
    y = selective_scan_spec(*(torch.from_numpy(x) for x in case.args))
    return {"y": y.float().numpy()}


def _scan_cost(case: Case, got) -> None:
    """The PyTorch scan's cost case: O(log L) rounds of tensor ops, not a step per time step."""
    length = case.args[0].shape[-1]
    lines, ops = int(got.get("lines", 0)), int(got.get("ops", 0))
    if lines > scan_line_budget(length):
        raise AssertionError(f"ran more than {scan_line_budget(length)} lines of Python at L = {length} (stopped "
                             "there): a loop over time steps; scan in ceil(log2 L) rounds, each one tensor step "
                             "over all positions (section 5, Algorithm 1)")
    if ops > scan_op_budget(length):
        raise AssertionError(f"ran {ops} torch ops at L = {length}, more than {scan_op_budget(length)}: a loop over "
                             "time steps; scan in ceil(log2 L) rounds, each a few tensor ops over all positions "
                             "(section 5, Algorithm 1)")
    library = sorted({str(n) for n in np.atleast_1d(got.get("op_names", []))} & LIBRARY_SCANS)
    if library:
        raise AssertionError(f"ran torch's {library[0]}: a library scan; combine the pairs (a_t, b_t) yourself "
                             "with the operator of section 5, in rounds")


def _check_scan(case: Case, got, want):
    if SCAN_COST in case.kind:
        _scan_cost(case, got)
    require(got, want)
    _check_unchanged(got)
    check_outputs(case, {"y": got["y"]}, want)
    if SCAN_COST in case.kind:
        length = case.args[0].shape[-1]
        if int(got.get("largest_out", 0)) >= length * length:
            raise AssertionError(f"an op produced {int(got['largest_out'])} elements, L^2 or more at L = {length}: "
                                 "keep the pairs (b, d, n, L) and combine them in rounds; never an (L, L) matrix")


def _chunks(got, length: int) -> int:
    """The launch's CHUNK, judged: a power of two in [MIN_CHUNK, MAX_CHUNK]; returns ceil(L / CHUNK)."""
    value = rules.constexprs(got, 0).get("CHUNK", "")
    if not value.isdigit():
        raise AssertionError("launched scan_kernel without a CHUNK constexpr: keep the kernel's signature")
    chunk = int(value)
    if not MIN_CHUNK <= chunk <= MAX_CHUNK or chunk & (chunk - 1):
        raise AssertionError(f"launched scan_kernel with CHUNK = {chunk}: chunks are a power of two from {MIN_CHUNK} "
                             f"to {MAX_CHUNK} time steps, each scanned in parallel (section 5, Algorithm 2)")
    return -(-length // chunk)


def _check_kernel_work(got, length: int, programs: int) -> None:
    """One program per (batch, channel) pair, one pass over the chunks, each read once and scanned
    with tl.associative_scan."""
    if not bool(got.get("calls_scan", False)):
        raise AssertionError("scan_kernel never calls tl.associative_scan: scan each chunk in parallel with it and "
                             "scan_op, not step by step (section 5, Algorithm 2, step 2.3)")
    chunks = _chunks(got, length)
    iterations, scans = int(got.get("loop_iterations", -1)), int(got.get("scans_per_program", -1))
    if iterations > chunks + 2:
        ran = (f"more than {chunk_loop_budget(length)} loop iterations (stopped there)"
               if iterations > chunk_loop_budget(length) else f"{iterations} loop iterations")
        raise AssertionError(f"a program of scan_kernel ran {ran} for {chunks} chunk(s) of "
                             f"L = {length}: one iteration per chunk, and inside a chunk tl.associative_scan, not a "
                             "loop over time steps or states (section 5, Algorithm 2)")
    if 0 <= scans < chunks:
        raise AssertionError(f"a program of scan_kernel ran tl.associative_scan with scan_op {scans} time(s) for "
                             f"{chunks} chunk(s): scan every chunk (section 5, Algorithm 2, step 2.3)")
    loads = float(got.get("loads_per_program", -1))
    if loads > 6 * chunks + 4:
        raise AssertionError(f"a program of scan_kernel ran {loads:.0f} tl.load calls for {chunks} chunk(s): load "
                             "delta, u, B and C once per chunk, as whole blocks, not a step at a time (section 5, "
                             "Algorithm 2, step 2.1)")
    grids = got.get("grids")
    if grids is not None and len(grids) and int(np.prod(grids[0])) != programs:
        raise AssertionError(f"launched scan_kernel on a grid of {int(np.prod(grids[0]))} program(s) for {programs} "
                             "(batch, channel) pairs: one program per pair, each walking its own sequence")
    if int(got.get("host_lines", -1)) > HOST_LINES:
        raise AssertionError(f"the wrapper ran {int(got['host_lines'])} lines of Python (at most {HOST_LINES}): it "
                             "allocates y and launches scan_kernel once; the work happens in the kernel")


def _check_triton(case: Case, got, want):
    if "kernels" in got:  # the launches were recorded (also when a program was stopped for looping)
        rules.kernel_rules(got, kernels={"scan_kernel"}, launches=1, block_limits={"CHUNK": MAX_CHUNK},
                           see="section 5, Algorithm 2")
        _check_kernel_work(got, case.args[0].shape[-1], case.args[0].shape[0] * case.args[0].shape[1])
    _check_scan(case, got, want)
    if int(got.get("launches", 0)) < 1:
        raise AssertionError("launched no Triton kernel; the scan must run inside your @triton.jit kernel")
    biggest = max(x.size for x in case.args)
    if int(got.get("largest_out", 0)) > biggest:
        raise AssertionError(f"a torch op outside the kernel produced {int(got['largest_out'])} elements, more than "
                             "the largest input: compute exp(delta A) and delta B u inside the kernel, not in PyTorch")
    if int(got.get("ops", 0)) > MAX_OPS_AROUND_KERNEL:
        raise AssertionError(f"ran {int(got['ops'])} torch ops outside the kernel (at most {MAX_OPS_AROUND_KERNEL}): "
                             "a loop over time steps in Python; let the kernel walk the chunks")


def _ref_ssd(case: Case):
    *arrays, chunk = case.args
    if chunk < 1:
        return {"raised": np.array("ValueError")}
    return {"y": ssd_spec(*(torch.from_numpy(v) for v in arrays)).float().numpy()}


def _ssd_cost(case: Case, got) -> None:
    """The cost case: a fixed number of lines per chunk, no (L, L) tensor, O(L chunk) work, a fixed
    number of ops per chunk (in that order: the most specific reason first)."""
    x, _, b, _, chunk = case.args
    bsz, length, p = x.shape
    n = b.shape[-1]
    chunks = -(-length // chunk)
    see = "section 6, the chunked algorithm"
    if int(got.get("lines", 0)) > ssd_line_budget(length, chunk):
        raise AssertionError(f"ran more than {ssd_line_budget(length, chunk)} lines of Python at L = {length}, chunk = "
                             f"{chunk} (stopped there): a loop over time steps; the only sequential pass is over the "
                             f"{chunks} chunks, everything inside a chunk is masked matmuls ({see})")
    if int(got.get("largest_out", 0)) >= length * length:
        raise AssertionError(f"an op produced {int(got['largest_out'])} elements, L^2 or more at L = {length}: the "
                             f"whole (L, L) mask; form it only inside each chunk, (chunk, chunk) blocks ({see})")
    if int(got.get("elements", 0)) > ssd_work_budget(bsz, length, n, p, chunk):
        raise AssertionError(f"its ops wrote {int(got['elements'])} elements at L = {length}, chunk = {chunk}, more than "
                             f"{ssd_work_budget(bsz, length, n, p, chunk)} (24 b L (chunk + n + p + n p)): O(L^2) work, such "
                             "as every output chunk against every earlier input chunk; earlier chunks reach a chunk only "
                             f"through the carried (n, p) state ({see})")
    if int(got.get("ops", 0)) > ssd_op_budget(length, chunk):
        raise AssertionError(f"ran {int(got['ops'])} torch ops at L = {length}, more than {ssd_op_budget(length, chunk)} "
                             f"for {chunks} chunks: a step per time step; pass the state once per chunk and do the rest "
                             f"for all chunks at once ({see})")


def _check_ssd(case: Case, got, want):
    if _expected_error(case, got, want):
        return
    if SSD_COST in case.kind:
        _ssd_cost(case, got)
    require(got, want)
    _check_unchanged(got)
    check_outputs(case, {"y": got["y"]}, want)


EXERCISES = {
    "hippo_legs": TASKS["hippo_legs"].graded(_ref_hippo, _check_hippo),
    "discretize": TASKS["discretize"].graded(_ref_discretize, _check_discretize),
    "ssm_conv": TASKS["ssm_conv"].graded(_ref_conv, _check_conv),
    "selective_scan": TASKS["selective_scan"].graded(_ref_scan, _check_scan),
    "selective_scan_triton": TASKS["selective_scan_triton"].graded(_ref_scan, _check_triton),
    "ssd_chunked": TASKS["ssd_chunked"].graded(_ref_ssd, _check_ssd),
}


# ---------------------------------------------------------------- benchmark (make bench)


def bench(timer, cuda: bool) -> dict:
    """Milliseconds per call at b = 1, d = 16, n = 16 as L grows: the Triton selective scan, the
    sequential PyTorch loop (up to L = 8192 on a GPU: one step of launches per time step), and causal
    attention (SDPA, one head of 64 per 4 channels, float16 on a GPU) over the same sequence."""
    lengths = [2**k for k in range(10, 17)] if cuda else [256, 512]
    loop_max = 8192 if cuda else 512
    rows = {"lengths": lengths, "b": 1, "d": 16, "n": 16,
            "triton_scan_ms": [], "torch_loop_ms": [], "attention_ms": []}
    rng = np.random.default_rng(0)
    for length in lengths:
        args = [torch.from_numpy(x).to(DEVICE) for x in scan_inputs(rng, 1, 16, 16, length, mamba_a=True)]
        rows["triton_scan_ms"].append(timer(lambda: selective_scan_triton(*args)) * 1e3)
        rows["torch_loop_ms"].append(timer(lambda: selective_scan_loop(*args)) * 1e3 if length <= loop_max else None)
        dtype = torch.float16 if cuda else torch.float32
        q = torch.randn(1, 4, length, 64, device=DEVICE, dtype=dtype)
        sdpa = torch.nn.functional.scaled_dot_product_attention
        rows["attention_ms"].append(timer(lambda: sdpa(q, q, q, is_causal=True)) * 1e3)
        del args, q
    return rows


# ---------------------------------------------------------------- gpu-check


def gpu_checks(small: bool) -> dict:
    """The chunked Triton scan at GPU sizes (or small ones in the interpreter) against the spec."""

    def scan_at(b: int, d: int, n: int, length: int):
        def check():
            args = scan_inputs(np.random.default_rng(length), b, d, n, length, mamba_a=True)
            got = selective_scan_triton(*(torch.from_numpy(x).to(DEVICE) for x in args)).cpu().double()
            want = selective_scan_spec(*(torch.from_numpy(x) for x in args))
            err = float((got - want).abs().max())
            assert err <= 1e-4 * max(1.0, float(want.abs().max())), (
                f"selective_scan_triton off by {err:.3g} at b={b}, d={d}, n={n}, L={length}")
        return check

    sizes = [(1, 2, 16, 300)] if small else [(2, 64, 16, 4097), (1, 16, 16, 65536)]
    return {f"selective_scan_triton b={b} d={d} n={n} L={length}": scan_at(b, d, n, length) for b, d, n, length in sizes}
