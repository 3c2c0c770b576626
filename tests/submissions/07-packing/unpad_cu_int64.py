# cell: unpad_input
# breaks: test_unpad_input
# cu_seqlens keeps cumsum's int64: the varlen kernels read int32.
def unpad_input(hidden, attention_mask):
    mask = attention_mask.bool()
    seqlens = mask.sum(dim=1)
    indices = torch.nonzero(mask.flatten()).flatten()
    cu_seqlens = F.pad(torch.cumsum(seqlens, dim=0), (1, 0))
    max_seqlen = int(seqlens.max()) if mask.shape[0] else 0
    return hidden.reshape(-1, *hidden.shape[2:])[indices], indices, cu_seqlens, max_seqlen


def pad_input(values, indices, batch, seqlen):
    flat = values.new_zeros(batch * seqlen, *values.shape[1:]).index_put((indices,), values)
    return flat.view(batch, seqlen, *values.shape[1:])
