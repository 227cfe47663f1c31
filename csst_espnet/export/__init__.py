"""Exports of trained models: the packed zip and the merged-LoRA Hugging Face checkpoint."""
