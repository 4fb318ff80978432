# Compile-time declarations for rowloop.py (Cython pure-Python mode; ignored by plain
# Python): CPython's array struct and bytearray buffer, so that the loops read an array's
# or a bytearray's memory directly.
from cpython cimport array as _carray
from cpython.bytearray cimport PyByteArray_AS_STRING
