"""Examples of embedding edu-core in other services (not part of the installed package)."""
