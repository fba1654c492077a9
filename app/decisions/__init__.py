"""Audio Decisions: question sets, decision jobs over recordings, and the answers as analysts read them."""
