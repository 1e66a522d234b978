"""The session core: one state (``state``), the rules that decide on it (``rules``, pure), the
operations that change sessions (``store``) and the reads the pages make (``queries``)."""
