# cell: made_masks
# breaks: test_made_masks
# Seeds and draws from torch's global generator, which changes the caller's random state.
def made_masks(n_in, hidden, order, seed):
    if n_in < 1 or order.shape != (n_in,) or not torch.equal(order.sort().values, torch.arange(n_in)):
        raise ValueError("bad n_in or order")
    if any(w < 1 for w in hidden):
        raise ValueError("bad width")
    torch.manual_seed(seed)
    m_in = order + 1
    below, masks = m_in, []
    for w in hidden:
        m = torch.randint(int(below.min()), n_in, (w,))
        masks.append((m[:, None] >= below[None, :]).float())
        below = m
    masks.append((m_in[:, None] > below[None, :]).float())
    return masks
