# cell: triton_merge
# breaks: test_triton_merge
# Right output, but the merge happens on the host: torch.bucketize gives every element its rank in
# the other tensor (a[i] goes to i + #(b < a[i]), b[j] to j + #(a <= b[j])), a scatter on the host
# builds the merge, and the kernel only copies it into the output.
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
    merged = torch.empty_like(out)
    merged[torch.arange(m, device=a.device) + torch.bucketize(a, b, right=False)] = a
    merged[torch.arange(n, device=a.device) + torch.bucketize(b, a, right=True)] = b
    BLOCK = 256
    merge_kernel[(triton.cdiv(m + n, BLOCK),)](merged, out, m + n, BLOCK=BLOCK)
    return out
