"""The resident conversation, channel-neutral: inbound events and outbound messages
(model.py), the one private-chat router and dialogue (core.py), its sentences (texts.py),
pictures through the sanitising pool (pictures.py), and the numbered-list rendering of
choices for channels without buttons (numbered.py). No channel library is imported here."""
