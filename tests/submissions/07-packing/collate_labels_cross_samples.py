# cell: packed_collate
# breaks: test_packed_collate
# Labels are shifted along the whole row: a sample's last token is trained to predict
# the first token of the next sample.
def packed_collate(samples: list[dict], capacity: int) -> dict:
    lengths = [len(s["input_ids"]) for s in samples]
    if capacity <= 0 or any(not 1 <= n <= capacity for n in lengths):
        raise ValueError("bad capacity or sample")
    rows, room = [], []
    for i in sorted(range(len(samples)), key=lambda i: (-lengths[i], i)):
        r = next((r for r, free in enumerate(room) if free >= lengths[i]), len(rows))
        if r == len(rows):
            rows.append([])
            room.append(capacity)
        rows[r].append(i)
        room[r] -= lengths[i]
    ids, pos, mask = (torch.zeros(len(rows), capacity, dtype=torch.int64) for _ in range(3))
    labels = torch.full((len(rows), capacity), -100, dtype=torch.int64)
    seqlens = []
    for r, row in enumerate(rows):
        col = 0
        for i in row:
            x = torch.tensor(samples[i]["input_ids"], dtype=torch.int64)
            n = len(x)
            ids[r, col:col + n], mask[r, col:col + n] = x, 1
            pos[r, col:col + n] = torch.arange(n)
            seqlens.append(n)
            col += n
        labels[r, :col - 1] = ids[r, 1:col]
    cu = torch.tensor([0, *np.cumsum(seqlens)], dtype=torch.int32)
    return {"input_ids": ids, "position_ids": pos, "labels": labels, "attention_mask": mask, "cu_seqlens": cu}
