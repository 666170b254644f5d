"""`todobackend-smoke`: checks an installed todobackend end to end against its
database (the TODO_DB_* variables): stores, completes, reads back and removes a todo."""

import sys

from todobackend import __version__
from todobackend.mysql_store import MySQLTodoStore, connect


def main():
    store = MySQLTodoStore(connect())
    todo = store.add("Release todobackend %s" % __version__)
    store.complete(todo.id)
    again = MySQLTodoStore(connect()).get(todo.id)  # a second connection: it was committed
    if not again.completed or again.slug != todo.slug:
        print("smoke: FAILED, read back %r" % (again,), file=sys.stderr)
        return 1
    store.delete(todo.id)
    print("smoke ok: todobackend %s stored, completed and removed todo %r in %s"
          % (__version__, again.slug, store.server_version()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
