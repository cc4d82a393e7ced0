"""Keeping results and files safe on disk: atomic writes (``atomic``), ``.npz`` reading that
never unpickles (``npz``), the trust check before loading a pickle (``trust``) and the SQLite
result cache (``cache``). Below spaces and data: it takes their objects as values and imports
nothing of theirs at run time."""
