# cell: lstm_cell
# breaks: test_lstm_cell
# Reads the gates in the order i, g, f, o instead of PyTorch's i, f, g, o: the forget gate gets
# the cell candidate's rows and the other way round.
def lstm_cell(x, h, c, W_ih, W_hh, b_ih, b_hh):
    gates = x @ W_ih.T + b_ih + h @ W_hh.T + b_hh  # (B, 4H)
    i, g, f, o = gates.chunk(4, dim=-1)
    i, f, g, o = torch.sigmoid(i), torch.sigmoid(f), torch.tanh(g), torch.sigmoid(o)
    c_next = f * c + i * g
    h_next = o * torch.tanh(c_next)
    return h_next, c_next
