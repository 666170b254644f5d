import unittest

from dyx_checks import FrozenClock, assert_keys

from todobackend import TodoStore


class TodoStoreTest(unittest.TestCase):
    def setUp(self):
        self.clock = FrozenClock(2024, 5, 1, 12, 0, 0)
        self.store = TodoStore(clock=self.clock)

    def test_add_assigns_ids_slugs_and_timestamps(self):
        todo = self.store.add("  Buy Milk & Eggs!  ")
        self.assertEqual(todo.id, 1)
        self.assertEqual(todo.title, "Buy Milk & Eggs!")
        self.assertEqual(todo.slug, "buy-milk-eggs")
        self.assertEqual(todo.created_at, "2024-05-01T12:00:00Z")
        self.assertEqual(self.store.add("Walk the dog").id, 2)

    def test_empty_title_is_rejected(self):
        with self.assertRaises(ValueError):
            self.store.add("   ")

    def test_complete_records_time_once(self):
        todo = self.store.add("Write tests")
        self.clock.advance(90)
        self.store.complete(todo.id)
        self.assertTrue(todo.completed)
        self.assertEqual(todo.completed_at, "2024-05-01T12:01:30Z")
        self.clock.advance(60)
        self.store.complete(todo.id)
        self.assertEqual(todo.completed_at, "2024-05-01T12:01:30Z")

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
            self.store.complete(99)

    def test_to_dict_shape(self):
        data = self.store.add("Ship it").to_dict()
        assert_keys(data, "id", "title", "slug", "order", "completed", "created_at",
                    "completed_at")
        self.assertIsNone(data["completed_at"])


if __name__ == "__main__":
    unittest.main()
