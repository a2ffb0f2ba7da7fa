"""Collaborative evolution: islands of one search on several nodes, which trust no one's scores.

Pure rules, no I/O, shared by the engine (evolution.exchange) and the node (node/islands.py): the message
bodies (messages.py) and what every island derives the same way from them (agreement.py).
"""
