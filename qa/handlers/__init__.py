"""Intent handlers, one module per family of questions; qa/registry.py is their index."""
