"""The store: what changes every day (contacts, reminders, calls, messages) in a database.

YAML holds what is versioned in git; this package holds the rest, in SQLite under the
state folder by default or in any SQLAlchemy database named by ``storage.url``.

Importing this package is free; ``tars.store.database`` and the modules that use it pull in
SQLModel/SQLAlchemy, so CLI modules import them inside their commands only.

* ``database``: ``open_database(url)`` / ``connect(url)``, sessions, error translation
* ``schema``: Alembic migrations applied on first use; newer-schema detection
* ``models``: the tables (``Contact``, ``Reminder``, ``Call``, ``TranscriptLine``,
  ``ToolInvocation``, ``Message``)
* ``contacts``, ``reminders``, ``calls``, ``messages``: what commands and tools do with them
* ``call_queue``: goal calls for later and their retries, reminder calls, live owner calls
  (what the scheduler, ``tars.scheduler``, claims and checks)
* ``recordings``: call recordings on disk, deleted with their call and after ``recording.keep_days``
* ``phones``: phone numbers, validated and normalised with ``phonenumbers``
* ``resolve``: who "dentist" is: a name, alias or number → one number, or the candidates
"""
