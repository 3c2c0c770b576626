"""One module per chapter: the plain spec, the fast (CUDA) implementation, the cases, the checks."""
