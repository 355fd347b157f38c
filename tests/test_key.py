"""Key and Namespace, row by row of the API table."""

from __future__ import annotations

import pickle

import pytest
from hypothesis import given
from hypothesis import strategies as st

from datastore import Key, Namespace


def test_normalisation() -> None:
    assert Key("a//b/") == Key("/a/b")
    assert Key(["a", "b"]) == Key("/a/b")
    assert Key(Key("/a/b")) == Key("/a/b")
    assert Key("") == Key("/") == Key([])
    assert str(Key("a//b/")) == "/a/b"
    assert repr(Key("/a/b")) == "Key('/a/b')"


def test_parts() -> None:
    key = Key("/Comedy/MontyPython/Actor:JohnCleese")
    assert key.namespaces == ["Comedy", "MontyPython", "Actor:JohnCleese"]
    assert all(isinstance(ns, Namespace) for ns in key.namespaces)
    assert key.name == "JohnCleese"
    assert key.type == "Actor"
    assert key.path == Key("/Comedy/MontyPython/Actor")
    assert key.parent == Key("/Comedy/MontyPython")
    assert Key("/a/b").path == Key("/a")
    assert Key("/a/b").type == ""
    assert Key("/a/b").name == "b"
    assert Key("/a:x").path == Key("/a")
    assert Key("/a").parent == Key("/")
    with pytest.raises(ValueError):
        Key("/").parent  # noqa: B018
    ns = Namespace("Actor:JohnCleese")
    assert (ns.field, ns.value) == ("Actor", "JohnCleese")
    assert (Namespace("plain").field, Namespace("plain").value) == ("", "plain")
    assert (Namespace("a:b:c").field, Namespace("a:b:c").value) == ("a", "b:c")


def test_empty_name_is_distinct() -> None:
    assert Key("/a/b:") != Key("/a/b")
    assert Key("/a/b:").name == "" and Key("/a/b:").type == "b"


def test_building() -> None:
    assert Key("/a").child("x") == Key("/a/x")
    assert Key("/a").child(Key("/x/y")) == Key("/a/x/y")
    assert Key("/").child("x") == Key("/x")
    assert Key("/a") / "b" == Key("/a/b")
    assert Key("/a/b").instance("x") == Key("/a/b:x")
    with pytest.raises(ValueError):
        Key("/a").instance("x/y")
    assert Key("/a/b/c").reverse == Key("/c/b/a")


def test_relations() -> None:
    assert Key("/foo").is_ancestor_of(Key("/foo/bar"))
    assert Key("/foo").is_ancestor_of("/foo/bar/baz")
    assert not Key("/foo").is_ancestor_of(Key("/foobar"))
    assert not Key("/foo").is_ancestor_of(Key("/foo"))
    assert Key("/foo/bar").is_descendant_of("/foo")
    assert not Key("/foobar").is_descendant_of("/foo")
    assert Key("/").is_ancestor_of("/a")
    assert Key("/a").is_top_level and not Key("/a/b").is_top_level and not Key("/").is_top_level


def test_equality_hashing_ordering() -> None:
    assert Key("/a") == Key("/a")
    assert Key("/a") != "/a"
    assert hash(Key("/a/b")) == hash(Key("a/b"))
    assert len({Key("/a"), Key("a"), Key("/a/")}) == 1
    assert sorted([Key("/a-b"), Key("/a/b"), Key("/a"), Key("/b"), Key("/A")]) == [
        Key("/A"), Key("/a"), Key("/a/b"), Key("/a-b"), Key("/b"),
    ]
    assert Key("/a/b") < Key("/a-b")
    assert Key("/a/z") < Key("/aa")


def test_immutable_and_picklable() -> None:
    key = Key("/a")
    with pytest.raises(AttributeError):
        key._string = "/b"  # type: ignore[misc]
    with pytest.raises(AttributeError):
        key.other = 1  # type: ignore[attr-defined]
    assert pickle.loads(pickle.dumps(key)) == key


def test_bad_input() -> None:
    for bad in (3, 1.5, None, b"/a", object(), ["a", 3]):
        with pytest.raises(TypeError):
            Key(bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        Key("/a\x00b")


def test_random_keys_are_unique() -> None:
    keys = {Key.random_key() for _ in range(1000)}
    assert len(keys) == 1000
    assert all(k.is_top_level for k in keys)


_NAME = st.text(st.characters(blacklist_characters="\x00/", blacklist_categories=()), min_size=1, max_size=5)


@given(st.lists(st.lists(_NAME, min_size=1, max_size=3).map(Key), max_size=20), st.binary(max_size=6))
def test_encode_all_equals_encoding_each_key(keys: list[Key], head: bytes) -> None:
    """The batch key encoder (one join/encode/split) matches the per-key one, surrogates included."""
    from datastore.indexing import encode_all, encode_text

    assert encode_all(head, keys) == [head + encode_text(k._string) for k in keys]


@given(st.lists(st.lists(_NAME, min_size=1, max_size=3).map(Key), max_size=20),
       st.lists(_NAME, min_size=1, max_size=3), st.integers(min_value=0, max_value=20))
def test_path_strings_equals_path_of_each_key(keys: list[Key], parent: list[str], siblings: int) -> None:
    """The bulk path column matches Key.path, with or without its one-collection shortcut."""
    from datastore.sqlquery import path_strings

    collection = Key(parent)
    keys = [collection.instance(f"n{i}") for i in range(siblings)] + keys
    strings = [k._string for k in keys]
    assert path_strings(strings) == [str(k.path) for k in keys]


@given(st.lists(st.lists(_NAME, min_size=1, max_size=3).map(Key), max_size=6),
       st.lists(_NAME, min_size=1, max_size=3), st.integers(min_value=0, max_value=6),
       st.booleans())
def test_shared_path_is_proved_only_when_true(keys: list[Key], parent: list[str], siblings: int,
                                              typed: bool) -> None:
    """shared_path names a path only when every key has it, and proves the usual batches.

    Siblings are ``/parent/n1`` or ``/parent/type:n1`` (the two usual
    shapes of a one-collection batch); the random keys try to fool it.
    """
    from datastore.indexing import shared_path

    head = Key(parent)._string.rstrip("/") + ("/t:" if typed else "/")
    batch = [Key(f"{head}n{i}") for i in range(siblings)]
    found = shared_path([k._string for k in batch + keys])
    if found is not None:
        assert {str(k.path) for k in batch + keys} == {found}
    if batch and not keys:
        assert found == str(batch[0].path)


@given(st.lists(st.lists(_NAME, min_size=1, max_size=3).map(Key), max_size=12),
       st.lists(_NAME, min_size=1, max_size=3), st.lists(_NAME, max_size=6))
def test_by_collection_equals_split_key_of_each(keys: list[Key], parent: list[str], names: list[str]) -> None:
    """Grouping by collection matches split_key, with or without its one-collection shortcut."""
    from datastore.indexing import by_collection, split_key

    collection = Key(parent)
    typed = [collection.instance(n) for n in names]
    untyped = [collection.child(n.replace(":", "")) for n in names if n.replace(":", "")]
    for batch in (typed, untyped, typed + keys, keys):
        expected: dict[str, dict[str, Key]] = {}
        for key in batch:
            path, name = split_key(key)
            expected.setdefault(path, {})[name] = key
        assert by_collection(batch) == expected
