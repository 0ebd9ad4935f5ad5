"""Network weights: the ``NetSpec`` description of each net, OpenFace's ``.dat`` format, the named weight
sets (OpenFace's files from the model cache, the bundled MIT weights) and the model cache itself."""
