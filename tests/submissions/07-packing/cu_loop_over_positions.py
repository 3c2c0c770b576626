# cell: cu_seqlens_from_position_ids
# breaks: test_cu_seqlens_from_position_ids
# Right boundaries, read one position at a time from Python: an op (and on a GPU a device sync)
# per token, where a comparison of the whole tensor with 0 finds every restart at once.
def cu_seqlens_from_position_ids(position_ids: torch.Tensor) -> tuple[torch.Tensor, int]:
    if position_ids.dim() != 2:
        raise ValueError("position_ids must be (B, T)")
    starts, previous = [], None
    for t, p in enumerate(position_ids.flatten()):
        p = int(p)
        column = t % position_ids.shape[1]
        if p != 0 and (column == 0 or p != previous + 1):
            raise ValueError("a row starts mid-sample or a position skips")
        if p == 0:
            starts.append(t)
        previous = p
    bounds = starts + [position_ids.numel()]
    max_seqlen = max((b - a for a, b in zip(bounds[:-1], bounds[1:])), default=0)
    return torch.tensor(bounds, dtype=torch.int32, device=position_ids.device), max_seqlen
