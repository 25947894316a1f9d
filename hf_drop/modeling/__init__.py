"""Models (timm, transformers) and the one pixel path from dataset images to model batches."""
