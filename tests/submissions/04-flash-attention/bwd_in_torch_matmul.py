# cell: flash_attn_bwd
# breaks: test_flash_attn_bwd
# A trivial kernel computes delta, and the gradients come from torch on the host with the @
# operator: P is built whole, N x N per head, and neither kernel of the backward pass runs.
# `@` reaches torch.matmul without naming it.
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
    s = q @ k.transpose(-2, -1) * scale  # (Z, H, N, N), on the host
    if causal:
        s = s.masked_fill(torch.ones(n, n, dtype=torch.bool, device=q.device).triu(1), float("-inf"))
    p = torch.exp(s - lse[..., None])
    ds = p * (do @ v.transpose(-2, -1) - delta[..., None])
    return ds @ k * scale, ds.transpose(-2, -1) @ q * scale, p.transpose(-2, -1) @ do
