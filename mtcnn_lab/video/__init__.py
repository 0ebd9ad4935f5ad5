"""Detection over a whole video: the decode stream and the caller's batches, worker processes over
shared memory, and what their fork server preloads."""
