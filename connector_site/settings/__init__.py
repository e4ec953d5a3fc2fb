"""Settings: ``base`` holds everything; ``test`` and ``production`` adjust it.

Every value comes from the environment through django-environ in ``base``. With nothing
set, the embedded default applies: SQLite, the database cache, the in-memory channel
layer, a filesystem Celery broker and the loopback exchange emulator, with the secret and
encryption keys generated once into the git-ignored ``var/`` folder.
"""
