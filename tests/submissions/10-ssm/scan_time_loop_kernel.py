# cell: selective_scan_triton
# breaks: test_selective_scan_triton
# Right values by stepping over time one element at a time inside the kernel: L dependent steps per
# program, each loading u_t, delta_t, B_t and C_t alone; no tl.associative_scan and no chunks (the
# CHUNK it is launched with is ignored).
@triton.jit
def scan_op(a1, b1, a2, b2):
    return a1 * a2, a2 * b1 + b2


@triton.jit
def scan_kernel(
    u_ptr,  # *f32 (b, d, L), contiguous
    delta_ptr,  # *f32 (b, d, L), contiguous
    A_ptr,  # *f32 (d, n), contiguous
    B_ptr,  # *f32 (b, n, L), contiguous
    C_ptr,  # *f32 (b, n, L), contiguous
    D_ptr,  # *f32 (d,)
    y_ptr,  # *f32 (b, d, L), written by the kernel
    d,  # channels
    n,  # states per channel
    L,  # sequence length
    N_BLOCK: tl.constexpr,  # next power of two >= n
    CHUNK: tl.constexpr,  # time steps per chunk, a power of two from 16 to 256
):
    pid = tl.program_id(0)  # = batch * d + channel
    bi = pid // d
    di = pid % d
    k = tl.arange(0, N_BLOCK)
    k_ok = k < n
    A = tl.load(A_ptr + di * n + k, mask=k_ok, other=0.0)  # (N_BLOCK,)
    Dd = tl.load(D_ptr + di)
    h = tl.zeros((N_BLOCK,), dtype=tl.float32)  # state carried between chunks
    for t in range(0, L):
        uu = tl.load(u_ptr + pid * L + t)
        dl = tl.load(delta_ptr + pid * L + t)
        Bt = tl.load(B_ptr + (bi * n + k) * L + t, mask=k_ok, other=0.0)
        Ct = tl.load(C_ptr + (bi * n + k) * L + t, mask=k_ok, other=0.0)
        h = tl.exp(dl * A) * h + dl * Bt * uu
        tl.store(y_ptr + pid * L + t, tl.sum(Ct * h, axis=0) + Dd * uu)


def selective_scan_triton(u: torch.Tensor, delta: torch.Tensor, A: torch.Tensor, B: torch.Tensor,
                          C: torch.Tensor, D: torch.Tensor) -> torch.Tensor:
    b, d, L = u.shape
    n = A.shape[1]
    y = torch.empty(b, d, L, dtype=torch.float32, device=u.device)
    CHUNK = 256
    scan_kernel[(b * d,)](u.contiguous(), delta.contiguous(), A.contiguous(), B.contiguous(), C.contiguous(),
                          D.contiguous(), y, d, n, L, N_BLOCK=triton.next_power_of_2(n), CHUNK=CHUNK)
    return y
