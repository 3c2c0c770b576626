# cell: patch_merger
# breaks: test_patch_merger
# Merged tokens walk the block grid column by column instead of row by row.
def patch_merger(x, grid_hw, k=(2, 2)):
    kh, kw = k
    d = x.shape[1]
    sizes = [(int(h), int(w)) for h, w in grid_hw.reshape(-1, 2).tolist()]
    if any(h % kh or w % kw for h, w in sizes) or sum(h * w for h, w in sizes) != x.shape[0]:
        raise ValueError("bad grid")
    merged, start = [], 0
    for h, w in sizes:
        blocks = x[start:start + h * w].reshape(h // kh, kh, w // kw, kw, d)
        merged.append(blocks.permute(2, 0, 1, 3, 4).reshape(-1, kh * kw * d))
        start += h * w
    return torch.cat(merged) if merged else x.new_zeros((0, kh * kw * d))
