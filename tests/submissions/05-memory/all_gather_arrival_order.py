# cell: ring_all_gather
# breaks: test_ring_all_gather
# The right messages to the right rank, but the result lists the shards in the order they arrived
# (own shard, then rank - 1, rank - 2, ...), not in rank order: wrong on every rank but the last.
def ring_all_gather(shard, rank, world, send, recv):
    arrived = [shard.clone()]
    for k in range(world - 1):
        send(arrived[-1], (rank + 1) % world)
        incoming = torch.empty_like(shard)
        recv(incoming, (rank - 1) % world)
        arrived.append(incoming)
    return torch.cat(arrived)
