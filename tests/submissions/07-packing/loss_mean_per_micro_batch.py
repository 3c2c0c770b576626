# cell: accumulated_loss
# breaks: test_accumulated_loss
# The trap: each micro-batch's own token mean divided by the number of micro-batches (loss /
# accumulation_steps). With unequal real-token counts the tokens of a short micro-batch weigh more,
# and a micro-batch without a real label is a mean over nothing (NaN).
def accumulated_loss(micro_batches: list[dict]) -> list[torch.Tensor]:
    if not micro_batches or not any(bool((m["labels"] != -100).any()) for m in micro_batches):
        raise ValueError("no micro-batches, or no real label")
    losses = []
    for m in micro_batches:
        logits, labels = m["logits"], m["labels"]
        mean = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1), ignore_index=-100)
        losses.append(mean / len(micro_batches))
    return losses
