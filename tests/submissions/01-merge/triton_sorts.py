# cell: triton_merge
# breaks: test_triton_merge
# Launches nothing: sorts the concatenation with torch, which is refused.
def triton_merge(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return torch.sort(torch.cat([a, b]), stable=True).values
