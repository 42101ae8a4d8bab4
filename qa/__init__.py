"""Dialogue: session state, context, intent -> query -> facts, actions, hand-off, verbalizers."""
