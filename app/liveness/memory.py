"""What one worker remembers of the sessions it served: their states, least recently used
forgotten first, bounded in number."""

from __future__ import annotations

import sys
import threading
from collections import OrderedDict
from dataclasses import replace

from app.sessions.state import SessionState


class Memory:
    """The states of at most ``size`` sessions, by public id. Each forget moves ``version`` on,
    so that a state read from the database before it is not remembered after it."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.states: OrderedDict[str, SessionState] = OrderedDict()
        self.public_ids: dict[int, str] = {}
        self.by_user: dict[int, set[str]] = {}
        self.version = 0
        self.lock = threading.Lock()

    def get(self, public_id: str) -> SessionState | None:
        with self.lock:
            state = self.states.get(public_id)
            if state is not None:
                self.states.move_to_end(public_id)
            return state

    def put(self, state: SessionState, version: int,
            changes: dict[str, object] | None = None) -> None:
        """Remember ``state`` (with the ``changes`` just written to it, by field), unless
        something was forgotten since ``version`` was read."""
        if changes:
            state = replace(state, **changes)  # type: ignore[arg-type]  # its own fields
        # Most sessions share a handful of browsers: one copy of each User-Agent.
        state = replace(state, last_user_agent=sys.intern(state.last_user_agent))
        with self.lock:
            if version != self.version:
                return
            self.states[state.public_id] = state
            self.states.move_to_end(state.public_id)
            self.public_ids[state.id] = state.public_id
            self.by_user.setdefault(state.user_id, set()).add(state.public_id)
            while len(self.states) > self.size:
                self._drop(self.states.popitem(last=False)[1])

    def _drop(self, state: SessionState) -> None:
        self.public_ids.pop(state.id, None)
        sessions = self.by_user.get(state.user_id)
        if sessions is not None:
            sessions.discard(state.public_id)
            if not sessions:
                del self.by_user[state.user_id]

    def forget(self, session_id: int | None, user_id: int | None) -> None:
        with self.lock:
            self.version += 1
            public_ids = set(self.by_user.get(user_id, ())) if user_id is not None else set()
            if session_id is not None and session_id in self.public_ids:
                public_ids.add(self.public_ids[session_id])
            for public_id in public_ids:
                state = self.states.pop(public_id, None)
                if state is not None:
                    self._drop(state)

    def clear(self) -> None:
        with self.lock:
            self.version += 1
            self.states.clear()
            self.public_ids.clear()
            self.by_user.clear()
