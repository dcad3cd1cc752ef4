from distillguard.stream.dedup import DedupWindow


def test_window_forgets_oldest_beyond_size() -> None:
    window = DedupWindow(size=3, ids=["a", "b", "c"])
    assert not window.add("a")
    assert window.add("d")  # evicts "a"
    assert "a" not in window and "d" in window
    assert window.add("a")
    assert len(window) == 3


def test_zero_size_disables_dedup() -> None:
    window = DedupWindow(size=0)
    assert window.add("a") and window.add("a")
