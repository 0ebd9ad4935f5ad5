"""Runtime backends: one class per runtime, all with ``run_pnet``, ``run_rnet``, ``run_onet``."""
