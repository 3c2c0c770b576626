# cell: lstm_cell
# breaks: test_lstm_cell
# Right values, but the old cell state is detached: no gradient flows along the additive cell
# path, which is the one path the LSTM exists for.
def lstm_cell(x, h, c, W_ih, W_hh, b_ih, b_hh):
    gates = x @ W_ih.T + b_ih + h @ W_hh.T + b_hh  # (B, 4H)
    i, f, g, o = gates.chunk(4, dim=-1)
    i, f, g, o = torch.sigmoid(i), torch.sigmoid(f), torch.tanh(g), torch.sigmoid(o)
    c_next = f * c.detach() + i * g
    h_next = o * torch.tanh(c_next)
    return h_next, c_next
