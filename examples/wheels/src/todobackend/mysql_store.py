"""Todos kept in MariaDB (or MySQL) through PyMySQL, with TodoStore's interface."""

import os

import pymysql

from dyx_stamp import to_iso, utc_now
from todobackend.models import Todo, new_todo

SCHEMA = """
CREATE TABLE IF NOT EXISTS todos (
  id INT AUTO_INCREMENT PRIMARY KEY,
  title VARCHAR(255) NOT NULL,
  slug VARCHAR(64) NOT NULL,
  position INT NOT NULL DEFAULT 0,
  completed BOOLEAN NOT NULL DEFAULT FALSE,
  created_at VARCHAR(32) NOT NULL,
  completed_at VARCHAR(32) NOT NULL DEFAULT ''
) CHARACTER SET utf8mb4
"""

COLUMNS = "id, title, slug, position, completed, created_at, completed_at"


def connect(**overrides):
    """A connection to the database the TODO_DB_* variables name (host "db" by default:
    the CI service's name)."""
    settings = dict(
        host=os.environ.get("TODO_DB_HOST", "db"),
        port=int(os.environ.get("TODO_DB_PORT", "3306")),
        user=os.environ.get("TODO_DB_USER", "root"),
        password=os.environ.get("TODO_DB_PASSWORD", ""),
        database=os.environ.get("TODO_DB_NAME", "todo"),
        charset="utf8mb4",
        autocommit=True,
    )
    settings.update(overrides)
    return pymysql.connect(**settings)


class MySQLTodoStore:
    """Holds todos in the `todos` table of `connection` (created when missing)."""

    def __init__(self, connection, clock=utc_now):
        self._db = connection
        self._clock = clock
        with self._db.cursor() as cursor:
            cursor.execute(SCHEMA)

    def server_version(self):
        with self._db.cursor() as cursor:
            cursor.execute("SELECT VERSION()")
            return cursor.fetchone()[0]

    def add(self, title, order=0):
        todo = new_todo(0, title, order, self._clock)
        with self._db.cursor() as cursor:
            cursor.execute("INSERT INTO todos (title, slug, position, created_at) VALUES (%s, %s, %s, %s)",
                           (todo.title, todo.slug, todo.order, todo.created_at))
            todo.id = cursor.lastrowid
        return todo

    def get(self, todo_id):
        with self._db.cursor() as cursor:
            cursor.execute("SELECT " + COLUMNS + " FROM todos WHERE id = %s", (todo_id,))
            row = cursor.fetchone()
        if row is None:
            raise KeyError("no todo with id %d" % todo_id)
        return _todo(row)

    def complete(self, todo_id):
        todo = self.get(todo_id)
        if not todo.completed:
            todo.completed = True
            todo.completed_at = to_iso(self._clock())
            with self._db.cursor() as cursor:
                cursor.execute("UPDATE todos SET completed = TRUE, completed_at = %s WHERE id = %s",
                               (todo.completed_at, todo_id))
        return todo

    def delete(self, todo_id):
        with self._db.cursor() as cursor:
            if cursor.execute("DELETE FROM todos WHERE id = %s", (todo_id,)) == 0:
                raise KeyError("no todo with id %d" % todo_id)

    def list(self, include_completed=True):
        query = "SELECT " + COLUMNS + " FROM todos"
        if not include_completed:
            query += " WHERE NOT completed"
        with self._db.cursor() as cursor:
            cursor.execute(query + " ORDER BY position, id")
            return [_todo(row) for row in cursor.fetchall()]


def _todo(row):
    todo_id, title, slug, order, completed, created_at, completed_at = row
    return Todo(id=todo_id, title=title, slug=slug, created_at=created_at, order=order,
                completed=bool(completed), completed_at=completed_at)
