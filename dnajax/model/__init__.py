"""The model: the masked-nucleotide encoder (Flax NNX) and its attention kernels. Knows nothing of files or configs."""
