"""The batch journal, whatever runs the batch (``creative batch`` in ``_cli/``, or an app
through ``CreativeClient.journaled``): the row states and the backend protocol
(``_model.py``), the SQLite backend (``_sqlite.py``, its writer thread ``_writer.py``);
the PostgreSQL backend for many workers is ``creative_client/_pg/_journal.py``."""
