"""The research lab on top of the runtime: the evaluation manifest, parity with C++ and layer
comparisons, porting experiments, benchmarks and efficiency, ISA caps, figures, tables, widgets and
the notebook runner. The runtime never imports it."""
