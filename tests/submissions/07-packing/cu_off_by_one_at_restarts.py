# cell: cu_seqlens_from_position_ids
# breaks: test_cu_seqlens_from_position_ids
# Compares position_ids[1:] with 0 and takes those indices as the boundaries: every boundary lands
# one token before the restart, so each sample loses its last token to the next one.
def cu_seqlens_from_position_ids(position_ids: torch.Tensor) -> tuple[torch.Tensor, int]:
    if position_ids.dim() != 2:
        raise ValueError("position_ids must be (B, T)")
    pos = position_ids
    if pos.numel() and bool((pos[:, 0] != 0).any()):
        raise ValueError("a row starts mid-sample")
    if not bool(((pos[:, 1:] == 0) | (pos[:, 1:] == pos[:, :-1] + 1)).all()):
        raise ValueError("a position is neither 0 nor the previous one plus 1")
    flat = pos.flatten()
    if flat.numel() == 0:
        return torch.zeros(1, dtype=torch.int32, device=flat.device), 0
    inner = torch.nonzero(flat[1:] == 0).flatten()  # off by one: indices into flat[1:], not flat
    first = torch.zeros(1, dtype=inner.dtype, device=flat.device)
    total = torch.full((1,), flat.numel(), dtype=inner.dtype, device=flat.device)
    cu_seqlens = torch.cat([first, inner, total]).to(torch.int32)
    return cu_seqlens, int((cu_seqlens[1:] - cu_seqlens[:-1]).max())
