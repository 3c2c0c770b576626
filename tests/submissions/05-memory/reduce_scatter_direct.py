# cell: ring_reduce_scatter
# breaks: test_ring_reduce_scatter
# Right values and the right number of bytes, but not a ring: each rank sends chunk j straight to
# rank j and sums what the others send it (a direct all-to-all, world - 1 links per rank at once).
def ring_reduce_scatter(x, rank, world, send, recv):
    pieces = list(x.reshape(world, -1))
    for j in range(world):
        if j != rank:
            send(pieces[j], j)
    mine = pieces[rank].clone()
    for j in range(world):
        if j != rank:
            arrived = torch.empty_like(mine)
            recv(arrived, j)
            mine = mine + arrived
    return mine
