"""Export of trained networks: the format table, ONNX (fp32, fp16, INT8 Q/DQ with calibration), TensorRT engines,
and the accuracy checks each artifact is verified with. onnx/onnxruntime/tensorrt are imported lazily."""
