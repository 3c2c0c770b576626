# cell: matmul
# breaks: test_matmul
# Passes b's strides the wrong way round (stride_bk = b.stride(1), stride_bn = b.stride(0)): the
# kernel walks b's memory as if it were transposed, which is right only for a symmetric layout.
@triton.jit
def matmul_kernel(A, B, C, M, N, K, stride_am, stride_ak, stride_bk, stride_bn, stride_cm, stride_cn,
                  BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr):
    offs_m = tl.program_id(0) * BLOCK_M + tl.arange(0, BLOCK_M)
    offs_n = tl.program_id(1) * BLOCK_N + tl.arange(0, BLOCK_N)
    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
    for k in range(0, K, BLOCK_K):
        offs_k = k + tl.arange(0, BLOCK_K)
        a_tile = tl.load(A + offs_m[:, None] * stride_am + offs_k[None, :] * stride_ak,
                         mask=(offs_m[:, None] < M) & (offs_k[None, :] < K), other=0.0)
        b_tile = tl.load(B + offs_k[:, None] * stride_bk + offs_n[None, :] * stride_bn,
                         mask=(offs_k[:, None] < K) & (offs_n[None, :] < N), other=0.0)
        acc = tl.dot(a_tile, b_tile, acc, input_precision="ieee")
    tl.store(C + offs_m[:, None] * stride_cm + offs_n[None, :] * stride_cn, acc.to(C.dtype.element_ty),
             mask=(offs_m[:, None] < M) & (offs_n[None, :] < N))


def matmul(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    M, K = a.shape
    N = b.shape[1]
    c = torch.empty((M, N), dtype=a.dtype, device=a.device)
    matmul_kernel[(triton.cdiv(M, 64), triton.cdiv(N, 64))](a, b, c, M, N, K, a.stride(0), a.stride(1), b.stride(1),
                                                          b.stride(0), c.stride(0), c.stride(1),
                                                          BLOCK_M=64, BLOCK_N=64, BLOCK_K=32)
    return c
