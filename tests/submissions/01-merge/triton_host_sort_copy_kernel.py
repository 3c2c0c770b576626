# cell: triton_merge
# breaks: test_triton_merge
# Right output, but the host sorts the concatenation (stable) and the kernel only copies the result
# into the output: the launch is there, the merge is not in it.
@triton.jit
def merge_kernel(src_ptr, out_ptr, total, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < total
    tl.store(out_ptr + offs, tl.load(src_ptr + offs, mask=mask), mask=mask)


def triton_merge(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    m, n = a.numel(), b.numel()
    out = torch.empty(m + n, dtype=a.dtype, device=a.device)
    if m + n == 0:
        return out
    merged = torch.sort(torch.cat([a, b]), stable=True).values
    BLOCK = 256
    merge_kernel[(triton.cdiv(m + n, BLOCK),)](merged, out, m + n, BLOCK=BLOCK)
    return out
