"""The grid node's reply engine: which agents a viewer gets and the rows that say it.

Its shapes (slot tables, cached rows, 64-bit cells, the compiled loop) stay inside this
package; a grid node speaks to it in agents, fields and frames. ``rowloop`` and
``agenttable`` are Cython pure-Python mode, compiled at install when a compiler is there.
"""
