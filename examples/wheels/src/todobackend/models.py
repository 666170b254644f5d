"""Todo items and an in-memory store for them."""

from dataclasses import dataclass

from dyx_slug import slugify
from dyx_stamp import to_iso, utc_now


@dataclass
class Todo:
    id: int
    title: str
    slug: str
    created_at: str
    order: int = 0
    completed: bool = False
    completed_at: str = ""

    def to_dict(self):
        return {
            "id": self.id,
            "title": self.title,
            "slug": self.slug,
            "order": self.order,
            "completed": self.completed,
            "created_at": self.created_at,
            "completed_at": self.completed_at or None,
        }


def new_todo(todo_id, title, order, clock):
    """A new todo; ValueError for an empty title."""
    title = title.strip()
    if not title:
        raise ValueError("a todo needs a title")
    return Todo(id=todo_id, title=title, slug=slugify(title, max_length=40),
                created_at=to_iso(clock()), order=order)


class TodoStore:
    """Holds todos in memory. `clock` returns an aware datetime (default: now, UTC)."""

    def __init__(self, clock=utc_now):
        self._clock = clock
        self._items = {}
        self._next_id = 1

    def add(self, title, order=0):
        todo = new_todo(self._next_id, title, order, self._clock)
        self._items[todo.id] = todo
        self._next_id += 1
        return todo

    def get(self, todo_id):
        try:
            return self._items[todo_id]
        except KeyError:
            raise KeyError("no todo with id %d" % todo_id) from None

    def complete(self, todo_id):
        todo = self.get(todo_id)
        if not todo.completed:
            todo.completed = True
            todo.completed_at = to_iso(self._clock())
        return todo

    def delete(self, todo_id):
        self.get(todo_id)
        del self._items[todo_id]

    def list(self, include_completed=True):
        items = sorted(self._items.values(), key=lambda t: (t.order, t.id))
        return [t for t in items if include_completed or not t.completed]
