"""Graph layer: the only code that talks to the graph database."""
