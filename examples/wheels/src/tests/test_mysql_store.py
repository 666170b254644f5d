"""The MariaDB store against a real server: the pipeline's `db` service (TODO_DB_*).
Skipped only where no database is named (a developer's quick local run)."""

import os
import unittest

from dyx_checks import FrozenClock

from todobackend.mysql_store import MySQLTodoStore, connect


@unittest.skipUnless(os.environ.get("TODO_DB_HOST"), "no database: set TODO_DB_HOST and TODO_DB_PASSWORD")
class MySQLTodoStoreTest(unittest.TestCase):
    def setUp(self):
        self.clock = FrozenClock(2024, 5, 1, 12, 0, 0)
        self.store = MySQLTodoStore(connect(), clock=self.clock)
        with connect().cursor() as cursor:
            cursor.execute("DELETE FROM todos")

    def test_it_is_a_real_mariadb_server(self):
        self.assertIn("MariaDB", self.store.server_version())

    def test_add_is_read_back_by_another_connection(self):
        todo = self.store.add("  Buy Milk & Eggs!  ", order=3)
        other = MySQLTodoStore(connect())
        again = other.get(todo.id)
        self.assertEqual((again.title, again.slug, again.order), ("Buy Milk & Eggs!", "buy-milk-eggs", 3))
        self.assertEqual(again.created_at, "2024-05-01T12:00:00Z")
        self.assertFalse(again.completed)

    def test_complete_records_time_once(self):
        todo = self.store.add("Write tests")
        self.clock.advance(90)
        self.store.complete(todo.id)
        self.clock.advance(60)
        self.assertEqual(self.store.complete(todo.id).completed_at, "2024-05-01T12:01:30Z")
        self.assertTrue(MySQLTodoStore(connect()).get(todo.id).completed)

    def test_list_orders_and_filters(self):
        a = self.store.add("a", order=2)
        b = self.store.add("b", order=1)
        c = self.store.add("c", order=2)
        self.store.complete(a.id)
        self.assertEqual([t.id for t in self.store.list()], [b.id, a.id, c.id])
        self.assertEqual([t.id for t in self.store.list(include_completed=False)], [b.id, c.id])

    def test_delete_and_missing_ids(self):
        todo = self.store.add("temporary")
        self.store.delete(todo.id)
        with self.assertRaises(KeyError):
            self.store.get(todo.id)
        with self.assertRaises(KeyError):
            self.store.delete(todo.id)

    def test_empty_title_is_rejected_before_the_database(self):
        with self.assertRaises(ValueError):
            self.store.add("   ")
        self.assertEqual(self.store.list(), [])


if __name__ == "__main__":
    unittest.main()
