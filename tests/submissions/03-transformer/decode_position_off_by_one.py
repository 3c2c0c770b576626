# cell: decode_greedy
# breaks: test_decode_greedy
# Each new token is given the position of the token before it (seen - 1 instead of seen).
def decode_greedy(model, prompt, steps):
    keys, values = [[] for _ in model.blocks], [[] for _ in model.blocks]  # per layer, chunks of (h, m, dh)
    x = model.embed(prompt) + model.positions(0, len(prompt))  # (P, d): the prefill
    seen, new = 0, []
    for step in range(steps):
        m = x.shape[0]  # tokens entering now: P, then 1
        for layer, block in enumerate(model.blocks):
            d = x.shape[1]
            q, k, v = (block.heads(t) for t in block.attn_in(block.ln1(x)).split(d, dim=-1))
            keys[layer].append(k)
            values[layer].append(v)
            K, V = torch.cat(keys[layer], dim=1), torch.cat(values[layer], dim=1)  # (h, seen + m, dh)
            scores = q @ K.transpose(-1, -2) / math.sqrt(d // block.n_heads)  # (h, m, seen + m)
            pos = torch.arange(seen + m, device=x.device)
            visible = pos[None, :] <= pos[seen:, None]  # (m, seen + m): causal, offset by what is cached
            scores = scores.masked_fill(~visible, float("-inf"))
            x = x + block.attn_out((torch.softmax(scores, dim=-1) @ V).transpose(0, 1).flatten(-2))
            x = x + block.ff2(F.gelu(block.ff1(block.ln2(x))))
        seen += m
        new.append(model.logits(x)[-1])  # (V,) the last position's logits
        if step + 1 < steps:
            x = model.embed(new[-1].argmax()[None]) + model.positions(seen - 1, 1)  # (1, d): the newest token only
    logits = torch.stack(new)  # (steps, V)
    return logits.argmax(dim=-1), logits
