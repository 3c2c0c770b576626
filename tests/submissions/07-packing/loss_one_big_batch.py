# cell: accumulated_loss
# breaks: test_accumulated_loss
# The right total another way: one cross-entropy over every micro-batch concatenated, returned as
# the first micro-batch's loss (zeros for the others). Its sum and accumulated gradient are right,
# but no micro-batch's backward can run before every forward has: the whole batch's activations
# stay alive, which is what gradient accumulation exists to avoid.
def accumulated_loss(micro_batches: list[dict]) -> list[torch.Tensor]:
    if not micro_batches or not any(bool((m["labels"] != -100).any()) for m in micro_batches):
        raise ValueError("no micro-batches, or no real label")
    logits = torch.cat([m["logits"].reshape(-1, m["logits"].shape[-1]) for m in micro_batches])
    labels = torch.cat([m["labels"].reshape(-1) for m in micro_batches])
    full = F.cross_entropy(logits, labels, ignore_index=-100)
    return [full] + [full.new_zeros(()) for _ in micro_batches[1:]]
