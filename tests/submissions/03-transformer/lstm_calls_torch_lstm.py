# cell: lstm_cell
# breaks: test_lstm_cell
# One step of torch.lstm (the whole-sequence LSTM, not a name the old refusal knew) on a sequence
# of length 1: right values and gradients, no gate written. Refused.
def lstm_cell(x, h, c, W_ih, W_hh, b_ih, b_hh):
    out, h1, c1 = torch.lstm(x[None], (h[None], c[None]), [W_ih, W_hh, b_ih, b_hh], True, 1, 0.0, False, False, False)
    return h1[0], c1[0]
