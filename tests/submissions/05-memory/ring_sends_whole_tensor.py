# cell: ring_reduce_scatter
# breaks: test_ring_reduce_scatter
# Right values, but every step passes the whole n-element tensor around the ring (each rank adds
# up all the inputs and keeps its chunk): world - 1 messages of n elements, not of one chunk, so
# (world - 1) * n elements per rank instead of (world - 1) / world * n.
def ring_reduce_scatter(x, rank, world, send, recv):
    total, passing = x.clone(), x.clone()
    for k in range(world - 1):
        send(passing, (rank + 1) % world)
        arrived = torch.empty_like(x)
        recv(arrived, (rank - 1) % world)
        total, passing = total + arrived, arrived
    c = x.numel() // world
    return total[rank * c:(rank + 1) * c]
