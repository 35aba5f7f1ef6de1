"""Training: the train state, the pure jitted step, the optimiser, the dry run, the loop and its guards and writer."""
