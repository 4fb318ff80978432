"""Lua game logic for grid nodes, and the EmmyLua annotations that describe its messages."""
