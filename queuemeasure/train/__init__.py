"""Training the learned vehicle detector (needs the ``[train]`` extra: torch, onnx, pillow)."""
