"""What ``share=`` keeps in PostgreSQL (psycopg 3, the ``[postgres]`` extra): the schema
(``_schema.py``), a connection that comes back (``_link.py``) and the shared budget
(``_budget.py``). Imported only when a client is given ``share``."""
