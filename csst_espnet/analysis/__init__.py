"""Analyses of trained models run over data (routing report); see docs/architecture.md."""
