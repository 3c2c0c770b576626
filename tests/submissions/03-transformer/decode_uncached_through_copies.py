# cell: decode_greedy
# breaks: test_decode_greedy
# The uncached loop again, with every weight copied first, so that the model's own weight tensors are
# never multiplied: the grader follows copies of a weight as it follows the weight.
def decode_greedy(model, prompt, steps):
    import copy
    twin = copy.deepcopy(model)
    for p in twin.parameters():
        p.data = p.data.clone() * 1.0
    tokens, logits = prompt.clone(), []
    for _ in range(steps):
        logits.append(twin(tokens)[-1])
        tokens = torch.cat([tokens, logits[-1].argmax()[None]])
    return tokens[len(prompt):], torch.stack(logits)
