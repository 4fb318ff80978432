# Compile-time declarations for rowloop.py (Cython pure-Python mode; ignored by plain
# Python): CPython's array struct, so that _memory reads an array's data pointer directly.
from cpython cimport array as _carray
