"""todobackend: a tiny todo model, kept in memory or in MariaDB (PyMySQL)."""

from todobackend.models import Todo, TodoStore

__version__ = "1.0.0"
__all__ = ["Todo", "TodoStore"]
