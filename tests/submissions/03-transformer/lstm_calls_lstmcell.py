# cell: lstm_cell
# breaks: test_lstm_cell
# Right answer by the forbidden road: torch's own LSTM cell.
def lstm_cell(x, h, c, W_ih, W_hh, b_ih, b_hh):
    cell = nn.LSTMCell(W_ih.shape[1], W_hh.shape[1], dtype=x.dtype, device=x.device)
    weights = {"weight_ih": W_ih, "weight_hh": W_hh, "bias_ih": b_ih, "bias_hh": b_hh}
    return torch.func.functional_call(cell, weights, (x, (h, c)))
