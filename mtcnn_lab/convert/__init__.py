"""Model converters: export PNet/RNet/ONet to other runtimes (Core ML, ONNX, ...)."""
