# cell: rnn_bptt
# breaks: test_rnn_bptt
# Right gradients, by autograd: the forward is run on leaves that require grad and
# torch.autograd.grad does the walk back. The exercise is the walk back.
def rnn_bptt(x, h0, W_xh, W_hh, b, dL_dh):
    leaves = [t.clone().requires_grad_() for t in (W_xh, W_hh, b, h0)]
    with torch.enable_grad():
        h, total = leaves[3], 0
        for t, x_t in enumerate(x):
            h = torch.tanh(x_t @ leaves[0].T + h @ leaves[1].T + leaves[2])
            total = total + (h * dL_dh[t]).sum()
        return tuple(torch.autograd.grad(total, leaves))
