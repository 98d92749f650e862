"""Reference networks in plain PyTorch (LeNet-5 here; the ImageNet classics in their own files)."""
