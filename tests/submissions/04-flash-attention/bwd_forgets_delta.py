# cell: flash_attn_bwd
# breaks: test_flash_attn_bwd
# dS = P * dP, without subtracting delta = rowsum(dO * O): dV is right, dQ and dK are not.
@triton.jit
def flash_bwd_dkdv_kernel(
    Q, K, V, DO,  # (Z, H, N, D), contiguous
    LSE, DELTA,  # (Z, H, N) float32: the forward's lse, and rowsum(dO * O)
    DK, DV,  # (Z, H, N, D): written
    n,  # sequence length N
    sm_scale,  # 1 / sqrt(D)
    D: tl.constexpr,  # head dimension
    BLOCK_M: tl.constexpr,  # queries per loop step
    BLOCK_N: tl.constexpr,  # keys per program
    CAUSAL: tl.constexpr,  # query i sees keys j <= i only
    PRECISION: tl.constexpr,  # tl.dot's input_precision
):
    pid_n = tl.program_id(0)
    pid_zh = tl.program_id(1)
    base = pid_zh * n * D
    offs_n = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    offs_d = tl.arange(0, D)
    kv_mask = offs_n[:, None] < n
    k = tl.load(K + base + offs_n[:, None] * D + offs_d[None, :], mask=kv_mask, other=0.0)  # (BLOCK_N, D)
    v = tl.load(V + base + offs_n[:, None] * D + offs_d[None, :], mask=kv_mask, other=0.0)
    dk = tl.zeros([BLOCK_N, D], dtype=tl.float32)
    dv = tl.zeros([BLOCK_N, D], dtype=tl.float32)
    lo = (pid_n * BLOCK_N) // BLOCK_M * BLOCK_M if CAUSAL else 0  # earlier queries see none of these keys
    for start_m in range(lo, n, BLOCK_M):
        offs_m = start_m + tl.arange(0, BLOCK_M)
        q_mask = offs_m[:, None] < n
        q = tl.load(Q + base + offs_m[:, None] * D + offs_d[None, :], mask=q_mask, other=0.0)  # (BLOCK_M, D)
        do = tl.load(DO + base + offs_m[:, None] * D + offs_d[None, :], mask=q_mask, other=0.0)
        lse = tl.load(LSE + pid_zh * n + offs_m, mask=offs_m < n, other=0.0)
        delta = tl.load(DELTA + pid_zh * n + offs_m, mask=offs_m < n, other=0.0)
        s_t = tl.dot(k, tl.trans(q), input_precision=PRECISION) * sm_scale  # (BLOCK_N, BLOCK_M)
        keep = kv_mask & (offs_m[None, :] < n)
        if CAUSAL:
            keep = keep & (offs_n[:, None] <= offs_m[None, :])
        p_t = tl.where(keep, tl.exp(s_t - lse[None, :]), 0.0)  # P^T
        dv += tl.dot(p_t, do, input_precision=PRECISION)
        dp_t = tl.dot(v, tl.trans(do), input_precision=PRECISION)  # dP^T
        ds_t = p_t * dp_t
        dk += tl.dot(ds_t, q, input_precision=PRECISION)
    tl.store(DK + base + offs_n[:, None] * D + offs_d[None, :], dk * sm_scale, mask=kv_mask)
    tl.store(DV + base + offs_n[:, None] * D + offs_d[None, :], dv, mask=kv_mask)


@triton.jit
def flash_bwd_dq_kernel(
    Q, K, V, DO,  # (Z, H, N, D), contiguous
    LSE, DELTA,  # (Z, H, N) float32
    DQ,  # (Z, H, N, D): written
    n,  # sequence length N
    sm_scale,  # 1 / sqrt(D)
    D: tl.constexpr,  # head dimension
    BLOCK_M: tl.constexpr,  # queries per program
    BLOCK_N: tl.constexpr,  # keys per loop step
    CAUSAL: tl.constexpr,  # query i sees keys j <= i only
    PRECISION: tl.constexpr,  # tl.dot's input_precision
):
    pid_m = tl.program_id(0)
    pid_zh = tl.program_id(1)
    base = pid_zh * n * D
    offs_m = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    offs_d = tl.arange(0, D)
    q_mask = offs_m[:, None] < n
    q = tl.load(Q + base + offs_m[:, None] * D + offs_d[None, :], mask=q_mask, other=0.0)
    do = tl.load(DO + base + offs_m[:, None] * D + offs_d[None, :], mask=q_mask, other=0.0)
    lse = tl.load(LSE + pid_zh * n + offs_m, mask=offs_m < n, other=0.0)
    delta = tl.load(DELTA + pid_zh * n + offs_m, mask=offs_m < n, other=0.0)
    dq = tl.zeros([BLOCK_M, D], dtype=tl.float32)
    hi = tl.minimum((pid_m + 1) * BLOCK_M, n) if CAUSAL else n
    for start_n in range(0, hi, BLOCK_N):
        offs_n = start_n + tl.arange(0, BLOCK_N)
        kv_mask = offs_n[:, None] < n
        k = tl.load(K + base + offs_n[:, None] * D + offs_d[None, :], mask=kv_mask, other=0.0)
        v = tl.load(V + base + offs_n[:, None] * D + offs_d[None, :], mask=kv_mask, other=0.0)
        s = tl.dot(q, tl.trans(k), input_precision=PRECISION) * sm_scale  # (BLOCK_M, BLOCK_N)
        keep = q_mask & (offs_n[None, :] < n)
        if CAUSAL:
            keep = keep & (offs_n[None, :] <= offs_m[:, None])
        p = tl.where(keep, tl.exp(s - lse[:, None]), 0.0)
        dp = tl.dot(do, tl.trans(v), input_precision=PRECISION)
        ds = p * dp
        dq += tl.dot(ds, k, input_precision=PRECISION)
    tl.store(DQ + base + offs_m[:, None] * D + offs_d[None, :], dq * sm_scale, mask=q_mask)


def flash_attn_bwd(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, o: torch.Tensor, lse: torch.Tensor,
                   do: torch.Tensor, causal: bool = False) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    z, h, n, d = q.shape
    delta = (do * o).sum(dim=-1)  # (Z, H, N): rowsum(dO * O)
    dq, dk, dv = torch.empty_like(q), torch.empty_like(k), torch.empty_like(v)
    BLOCK_M, BLOCK_N = 64, 64
    args = dict(D=d, BLOCK_M=BLOCK_M, BLOCK_N=BLOCK_N, CAUSAL=causal, PRECISION="ieee")
    flash_bwd_dkdv_kernel[(triton.cdiv(n, BLOCK_N), z * h)](q, k, v, do, lse, delta, dk, dv, n, 1.0 / math.sqrt(d), **args)
    flash_bwd_dq_kernel[(triton.cdiv(n, BLOCK_M), z * h)](q, k, v, do, lse, delta, dq, n, 1.0 / math.sqrt(d), **args)
    return dq, dk, dv
    ### END SOLUTION