# cell: rnn_bptt
# breaks: test_rnn_bptt
# Truncated back-propagation through time with a window of one step: each step's gradient uses only
# the loss at that step, dL/dh_t = dL_dh[t], and never what flows back from step t + 1.
def rnn_bptt(x, h0, W_xh, W_hh, b, dL_dh):
    hs = [h0]
    for x_t in x:
        hs.append(torch.tanh(x_t @ W_xh.T + hs[-1] @ W_hh.T + b))
    dW_xh, dW_hh, db = torch.zeros_like(W_xh), torch.zeros_like(W_hh), torch.zeros_like(b)
    dh0 = torch.zeros_like(h0)
    for t in range(len(x), 0, -1):
        da = dL_dh[t - 1] * (1 - hs[t] ** 2)
        dW_xh += da.T @ x[t - 1]
        dW_hh += da.T @ hs[t - 1]
        db += da.sum(0)
        if t == 1:
            dh0 = da @ W_hh
    return dW_xh, dW_hh, db, dh0
