"""Redis: the one place that knows the key schema (see ``schema``)."""
