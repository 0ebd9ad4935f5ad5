"""OpenFace's MTCNN cascade, step by step: resize, pyramid, proposals, crops, boxes (NMS, regression,
correction), the stages that chain them (:mod:`mtcnn_lab.cascade.stages`) and their timer."""
