# cell: rnn_bptt
# breaks: test_rnn_bptt
# The walk back stops one step short (t = T .. 2): step 1 contributes nothing to the weights, and
# dh0 is taken from step 2's carry instead of step 1's.
def rnn_bptt(x, h0, W_xh, W_hh, b, dL_dh):
    hs = [h0]
    for x_t in x:
        hs.append(torch.tanh(x_t @ W_xh.T + hs[-1] @ W_hh.T + b))
    dW_xh, dW_hh, db = torch.zeros_like(W_xh), torch.zeros_like(W_hh), torch.zeros_like(b)
    carry = torch.zeros_like(h0)
    for t in range(len(x), 1, -1):
        da = (dL_dh[t - 1] + carry) * (1 - hs[t] ** 2)
        dW_xh += da.T @ x[t - 1]
        dW_hh += da.T @ hs[t - 1]
        db += da.sum(0)
        carry = da @ W_hh
    return dW_xh, dW_hh, db, carry
