"""Pieces every layer shares: the typed settings object and the error tree."""
