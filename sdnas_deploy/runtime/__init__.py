"""Runtimes models run in: ONNX Runtime sessions, TensorRT engines, timing statistics, device fingerprints, Jetson.

Light to import: onnxruntime, tensorrt and CUDA are imported inside the functions that need them.
"""
