"""Benchmarks of the lab: timing, the runners under test (mtcnn-lab backends, pymtcnn), the harness, reports."""
