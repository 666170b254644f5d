"""todobackend: a tiny in-memory todo model."""

from todobackend.models import Todo, TodoStore

__version__ = "1.0.0"
__all__ = ["Todo", "TodoStore"]
