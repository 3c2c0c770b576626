# cell: count_params
# breaks: test_count_params
# An untied LM head counted once: the embedding matrix is counted as if always shared with the head.
def count_params(cfg):
    V, h, inter, L = cfg["vocab_size"], cfg["hidden_size"], cfg["intermediate_size"], cfg["num_layers"]
    heads, kv = cfg["num_heads"], cfg["num_kv_heads"]
    if min(V, h, inter, L) < 0 or heads < 1 or kv < 1 or h % heads or heads % kv:
        raise ValueError("bad config")
    kv_dim = kv * (h // heads)
    return L * (2 * h * h + 2 * h * kv_dim + 3 * h * inter + 2 * h) + h + V * h
