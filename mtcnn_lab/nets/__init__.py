"""The three nets built from a ``NetSpec``: the numpy reference with OpenFace's C++ semantics, torch
modules, OpenVINO graphs. Backends (:mod:`mtcnn_lab.backends`) run them."""
