"""Understanding shoppers' questions: joint intent + entity model and entity linking."""
