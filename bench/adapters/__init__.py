"""Subject factories, one module per store family; :mod:`bench.registry` lists them all."""
