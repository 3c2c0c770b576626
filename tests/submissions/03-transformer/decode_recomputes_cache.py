# cell: decode_greedy
# breaks: test_decode_greedy
# A cache in name only: at every step the keys and values of the whole sequence are projected
# again from scratch, and only the last position's output is used. Right ids, O(n^2) work.
def decode_greedy(model, prompt, steps):
    tokens, logits = prompt.clone(), []
    for _ in range(steps):
        x = model.embed(tokens) + model.positions(0, len(tokens))
        for block in model.blocks:
            d = x.shape[1]
            q, k, v = (block.heads(t) for t in block.attn_in(block.ln1(x)).split(d, dim=-1))
            n = x.shape[0]
            causal = torch.ones(n, n, dtype=torch.bool, device=x.device).tril()
            scores = (q @ k.transpose(-1, -2) / math.sqrt(d // block.n_heads)).masked_fill(~causal, float("-inf"))
            x = x + block.attn_out((torch.softmax(scores, dim=-1) @ v).transpose(0, 1).flatten(-2))
            x = x + block.ff2(F.gelu(block.ff1(block.ln2(x))))
        logits.append(model.logits(x)[-1])
        tokens = torch.cat([tokens, logits[-1].argmax()[None]])
    return tokens[len(prompt):], torch.stack(logits)
