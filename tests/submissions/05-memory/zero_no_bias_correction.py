# cell: zero_step
# breaks: test_zero_step
# AdamW without bias correction: m and v are used as they are, so the first steps have the
# wrong size (at step 1 the update is 0.1 g / sqrt(0.001 g^2), about 3.2 lr, instead of lr).
def zero_step(params, grads, states, world, stage, lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, step=1):
    if isinstance(stage, bool) or stage not in (1, 2, 3):
        raise ValueError("stage must be 1, 2 or 3")
    if isinstance(world, bool) or not isinstance(world, int) or world < 1:
        raise ValueError("world must be >= 1")
    if isinstance(step, bool) or not isinstance(step, int) or step < 1:
        raise ValueError("step counts from 1")
    if len(grads) != world:
        raise ValueError("one list of gradients per rank")
    if any(len(g) != len(params) or any(a.shape != p.shape for a, p in zip(g, params)) for g in grads):
        raise ValueError("gradients must be shaped like the parameters")
    numels = [p.numel() for p in params]
    P = sum(numels)
    S = -(-P // world)

    def flatten(tensors):  # (world * S,) zero-padded
        flat = torch.cat([t.detach().reshape(-1) for t in tensors])
        return torch.nn.functional.pad(flat, (0, world * S - P))

    if states is not None:
        if len(states) != world or any(tuple(s[k].shape) != (S,) for s in states for k in ("exp_avg", "exp_avg_sq")):
            raise ValueError(f"states must be {world} dicts of two tensors of {S} elements")
    flat_params = flatten(params)
    summed = sum(flatten(g) for g in grads)  # what an all-reduce would give every rank
    beta1, beta2 = betas
    pieces, new_states = [], []
    for r in range(world):
        lo, hi = r * S, (r + 1) * S
        g = summed[lo:hi] / world  # reduce-scatter: rank r's shard of the mean gradient
        m0 = states[r]["exp_avg"] if states is not None else torch.zeros_like(g)
        v0 = states[r]["exp_avg_sq"] if states is not None else torch.zeros_like(g)
        m = beta1 * m0 + (1 - beta1) * g
        v = beta2 * v0 + (1 - beta2) * g.square()
        m_hat = m
        v_hat = v
        w = flat_params[lo:hi] * (1 - lr * weight_decay)
        pieces.append(w - lr * m_hat / (v_hat.sqrt() + eps))
        new_states.append({"exp_avg": m, "exp_avg_sq": v})
    gathered = torch.cat(pieces)[:P]  # all-gather, then drop the padding
    new_params = [t.reshape(p.shape).clone() for t, p in zip(gathered.split(numels), params)]
    held_p = S if stage == 3 else P
    held_g = S if stage >= 2 else P
    size = params[0].element_size()
    return new_params, new_states, [size * (held_p + held_g + 2 * S) for _ in range(world)]
