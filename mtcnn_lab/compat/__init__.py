"""Drop-in replacements for other face-detection packages' APIs, running mtcnn-lab's cascade.

:mod:`mtcnn_lab.compat.pymtcnn`: pymtcnn 1.2.0's ``MTCNN`` (used by pyclnf and pyfaceau).
"""
