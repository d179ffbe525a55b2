"""Writes of the telephony layer, one module per subject.

Sync functions, one transaction each; the asyncio pbx process calls them in
worker threads (STYLE.md 7).
"""
