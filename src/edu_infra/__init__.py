"""Adapters behind the edu_domain ports: memory, SQLAlchemy, Redis, wiring."""
