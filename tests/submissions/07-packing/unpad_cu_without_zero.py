# cell: unpad_input
# breaks: test_unpad_input
# cu_seqlens is the plain cumsum, without the leading 0: B entries instead of B + 1.
def unpad_input(hidden, attention_mask):
    mask = attention_mask.bool()
    seqlens = mask.sum(dim=1)
    indices = torch.nonzero(mask.flatten()).flatten()
    cu_seqlens = torch.cumsum(seqlens, dim=0).to(torch.int32)
    max_seqlen = int(seqlens.max()) if mask.shape[0] else 0
    return hidden.reshape(-1, *hidden.shape[2:])[indices], indices, cu_seqlens, max_seqlen


def pad_input(values, indices, batch, seqlen):
    flat = values.new_zeros(batch * seqlen, *values.shape[1:]).index_put((indices,), values)
    return flat.view(batch, seqlen, *values.shape[1:])
