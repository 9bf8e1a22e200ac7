"""The host service's own tables."""

from sqlalchemy import Column, Integer, MetaData, String, Table

metadata = MetaData()
Table("host_widgets", metadata, Column("id", Integer, primary_key=True), Column("name", String(50)))
