"""Training Stillflow's motion network (torch): procedural and Blender-rendered scenes, the training loop and
the ONNX export. None of it ships in the extension; the shipped model is `models/stillflow_motion.onnx`."""
