"""Postgres access shared by the agent worker and the token server.

Everything that touches SQL lives here: the pool, migrations, the embedded dev server and one
repository module per table group. Services call repository functions, never raw SQL.
"""
