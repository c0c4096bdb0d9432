"""The caches' byte bound: what a process keeps never weighs more than its setting."""

from app.lru import ByteLRU


def test_the_least_recently_used_values_go_first_and_the_bound_holds():
    cache: ByteLRU[bytes] = ByteLRU(100, len)
    cache.put("a", b"x" * 40)
    cache.put("b", b"x" * 40)
    assert cache.get("a") == b"x" * 40  # a is now the most recently used
    cache.put("c", b"x" * 40)
    assert cache.get("b") is None and cache.get("a") is not None and cache.used == 80
    cache.put("huge", b"x" * 101)  # heavier than the whole budget: used once, never kept
    assert cache.get("huge") is None and cache.used == 80


def test_a_value_that_grew_is_weighed_again():
    grown = bytearray(10)
    cache: ByteLRU[bytearray] = ByteLRU(50, len)
    cache.put("a", grown)
    cache.put("b", bytearray(30))
    grown.extend(bytes(20))
    cache.resize("a")
    assert cache.used <= 50 and cache.get("b") is None and cache.get("a") is grown
    cache.discard(lambda key: key == "a")
    assert cache.used == 0
