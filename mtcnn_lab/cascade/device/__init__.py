"""OpenFace's MTCNN cascade as torch tensor ops on one device, bit for bit the host cascade's arithmetic.

Frames go to the device once, as uint8; the pyramid, PNet, proposals, NMS, regression, squaring, crops, RNet,
ONet and ONet's NMS run there on all frames of one size at once, and only the faces ONet keeps come back,
where :func:`mtcnn_lab.cascade.stages.final_detections` decodes them exactly as the host cascade does. Only
counts cross to the host on the way (to size tensors and group network calls). Modules: :mod:`.sampling`
(OpenFace's bilinear resize), :mod:`.boxes` (NMS, regression, squaring, probabilities) and :mod:`.stages`
(the pipeline, :func:`~mtcnn_lab.cascade.device.stages.run_device_cascade`).
"""
