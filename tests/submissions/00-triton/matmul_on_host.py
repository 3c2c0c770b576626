# cell: matmul
# breaks: test_matmul
# Computes the product on the host by broadcasting (a[:, :, None] * b[None]).sum(1), no @ or matmul
# named, and launches matmul_kernel only to copy the result tile by tile into C.
@triton.jit
def matmul_kernel(A, B, C, M, N, K, stride_am, stride_ak, stride_bk, stride_bn, stride_cm, stride_cn,
                  BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr):
    offs_m = tl.program_id(0) * BLOCK_M + tl.arange(0, BLOCK_M)
    offs_n = tl.program_id(1) * BLOCK_N + tl.arange(0, BLOCK_N)
    mask = (offs_m[:, None] < M) & (offs_n[None, :] < N)
    tile = tl.load(A + offs_m[:, None] * stride_am + offs_n[None, :] * stride_ak, mask=mask, other=0.0)
    tl.store(C + offs_m[:, None] * stride_cm + offs_n[None, :] * stride_cn, tile.to(C.dtype.element_ty), mask=mask)


def matmul(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    M, K = a.shape
    N = b.shape[1]
    prod = (a.float()[:, :, None] * b.float()[None]).sum(1)
    c = torch.empty((M, N), dtype=a.dtype, device=a.device)
    matmul_kernel[(triton.cdiv(M, 64), triton.cdiv(N, 64))](prod, b, c, M, N, K, prod.stride(0), prod.stride(1),
                                                          b.stride(0), b.stride(1), c.stride(0), c.stride(1),
                                                          BLOCK_M=64, BLOCK_N=64, BLOCK_K=32)
    return c
