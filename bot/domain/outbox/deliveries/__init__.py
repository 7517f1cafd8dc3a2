"""One class per outbox kind (``OutboxKind``): how a row of that kind is sent. A new kind is a
payload in ``payloads.py``, a class here, and one line in the worker's table."""
