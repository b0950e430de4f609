"""Latency on the device: timing loops, one backend per runtime (ORT CPU/CUDA, torch, TensorRT), tables,
and the latency table's prediction next to the measurement (``--compare-lut``)."""
