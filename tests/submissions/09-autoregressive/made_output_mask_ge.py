# cell: made_masks
# breaks: test_made_masks
# The output mask uses >= like the hidden ones: output d reaches input d itself.
def made_masks(n_in, hidden, order, seed):
    if n_in < 1 or order.shape != (n_in,) or not torch.equal(order.sort().values, torch.arange(n_in)):
        raise ValueError("bad n_in or order")
    if any(w < 1 for w in hidden):
        raise ValueError("bad width")
    g = torch.Generator().manual_seed(seed)
    m_in = order + 1
    below, masks = m_in, []
    for w in hidden:
        m = torch.randint(int(below.min()), n_in, (w,), generator=g)
        masks.append((m[:, None] >= below[None, :]).float())
        below = m
    masks.append((m_in[:, None] >= below[None, :]).float())
    return masks
