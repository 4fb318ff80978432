"""Thin Twisted/XMPP adapters around the sans-IO cores."""
