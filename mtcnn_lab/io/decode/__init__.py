"""Video decoding: the decode profiles (which decoder's pixels a run reproduces), the probe of a video's
stream (codec, colour tags, rotation) and the frame readers (PyAV for the profiles, OpenCV for
``opencv-python``)."""
